"""Regression tests for the penetration test's findings (docs/operations.md, "Threat model")."""
