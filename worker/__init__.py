"""Sends campaigns: dramatiq actors, the Kaleyra client, campaign state and logging. Imports `schemas` only."""
