"""Reviewing a pull request: workspace, checks, check runs, gate, comments."""
