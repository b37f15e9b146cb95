"""Shared runtime for every puppet service."""
