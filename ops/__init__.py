"""Operational tooling that ships with the product: the Kaleyra gateway simulator."""
