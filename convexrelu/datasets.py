"""Datasets (filled in by issue 2)."""
