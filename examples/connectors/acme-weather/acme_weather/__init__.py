"""Acme Weather connector: reads forecasts from the Acme Weather API."""
