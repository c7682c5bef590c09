"""Sends campaigns: dramatiq actors, the Kaleyra client, campaign state, logging.

Imports `schemas` only.
"""
