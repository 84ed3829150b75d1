"""Leaky Notes connector (example with planted problems for connector-gate's tests)."""
