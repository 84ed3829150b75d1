"""Test helpers shared across test folders (local stand-ins for outside services)."""
