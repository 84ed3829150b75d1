"""Fixtures for tests that run connector code in the sandbox."""

from tests.sandbox.helpers import venv_cache, workdir

__all__ = ["venv_cache", "workdir"]
