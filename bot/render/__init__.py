"""Rendering of everything users read: check-run outputs, the summary and review comments."""
