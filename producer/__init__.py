"""Builds, validates and publishes campaigns. Imports `schemas` only."""
