"""Content-addressed cache of check results: unchanged connector + rules → same result."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from checks.model import CheckResult, Conclusion
from checks.serialize import result_from_dict, result_to_dict

#: Generated folders that do not change what a connector is.
_SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})

#: Only decisive results are cached: a tool that could not run should be retried next time.
_CACHEABLE = frozenset({Conclusion.SUCCESS, Conclusion.FAILURE, Conclusion.SKIPPED})


def tree_digest(directory: Path | None) -> str:
    """Hash of every file's relative path, kind and content below `directory`."""
    digest = hashlib.sha256()
    if directory is None or not directory.is_dir():
        return "absent"
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            rel = path.relative_to(directory).as_posix()
            digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
            if path.is_symlink():
                digest.update(b"L" + os.readlink(path).encode("utf-8", "surrogateescape"))
            else:
                with path.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
            digest.update(b"\x01")
    return digest.hexdigest()


class ResultCache:
    """Check results stored as JSON files named by their cache key."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def get(self, key: str, max_age_s: float | None = None) -> CheckResult | None:
        path = self._directory / f"{key}.json"
        try:
            if max_age_s is not None and time.time() - path.stat().st_mtime > max_age_s:
                return None
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        try:
            return result_from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None  # an entry from an older format: recompute

    def put(self, key: str, result: CheckResult) -> None:
        if result.conclusion not in _CACHEABLE:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self._directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(result_to_dict(result), fh)
            os.replace(tmp, self._directory / f"{key}.json")
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
