"""One exception family for the checks boundary."""

from __future__ import annotations


class CheckError(Exception):
    """Base of every error the checks package raises on purpose."""


class ConfigError(CheckError):
    """A rules file, manifest or argument is invalid; names the file, line and key."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, key: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.key:
            where = f"{where}: {self.key}" if where else self.key
        return f"{where}: {self.message}" if where else self.message


class ToolError(CheckError):
    """An external tool could not run or crashed; carries a scrubbed stderr tail."""

    def __init__(self, tool: str, message: str, *, stderr_tail: str = "") -> None:
        self.tool = tool
        self.message = message
        self.stderr_tail = stderr_tail
        super().__init__(str(self))

    def __str__(self) -> str:
        tail = f"\n{self.stderr_tail}" if self.stderr_tail else ""
        return f"{self.tool}: {self.message}{tail}"


class UnsafeInputError(CheckError):
    """Hostile or oversized input was refused (tar slip, symlink out, huge file...)."""
