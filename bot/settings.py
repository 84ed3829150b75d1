"""The App's settings: read from the environment and validated once, at start-up."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_OSV_URL = "https://api.osv.dev"
DEFAULT_STATE_DIR = Path(".connector-gate")
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_STATE_DIR / 'connector-gate.db'}"

SqliteSynchronous = Literal["NORMAL", "FULL"]

_T = TypeVar("_T")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable, never its value."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the App needs from its environment, validated."""

    app_id: int
    """GITHUB_APP_ID: the App's numeric id (the JWT issuer)."""
    private_key: str = field(repr=False)
    """The App's RSA private key, PEM (from GITHUB_PRIVATE_KEY_PATH or GITHUB_PRIVATE_KEY)."""
    webhook_secrets: tuple[str, ...] = field(repr=False)
    """GITHUB_WEBHOOK_SECRET, comma-separated: during a rotation both old and new verify."""
    api_url: str = DEFAULT_API_URL
    """GITHUB_API_URL: REST API root (GitHub Enterprise or a fake server in tests)."""
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    """CONNECTOR_GATE_DATABASE_URL: `sqlite:///path` or `postgresql://...` (may hold a password,
    hence not in repr)."""
    osv_url: str = DEFAULT_OSV_URL
    """CONNECTOR_GATE_OSV_URL: OSV-compatible vulnerability service for dependency audits."""
    public_url: str = ""
    """CONNECTOR_GATE_PUBLIC_URL: where the App is reachable (links in reports); may be empty."""
    workers: int = 2
    """CONNECTOR_GATE_WORKERS: number of in-process job workers."""
    work_dir: Path = DEFAULT_STATE_DIR / "work"
    """CONNECTOR_GATE_WORK_DIR: scratch space for checkouts and tool runs."""
    sqlite_synchronous: SqliteSynchronous = "NORMAL"
    """CONNECTOR_GATE_SQLITE_SYNCHRONOUS: NORMAL (WAL: an accepted delivery survives a crash or
    kill -9 of the process; the last commits may be lost on power loss) or FULL (fsync on every
    commit: survives power loss too, at a cost in throughput)."""
    job_lease_seconds: float = 60.0
    """CONNECTOR_GATE_JOB_LEASE_SECONDS: how long a claimed job stays owned without a heartbeat;
    after a crash, its delivery is picked up again once the lease runs out."""
    job_max_attempts: int = 5
    """CONNECTOR_GATE_JOB_MAX_ATTEMPTS: attempts before a delivery is marked dead."""
    shutdown_grace_seconds: float = 30.0
    """CONNECTOR_GATE_SHUTDOWN_GRACE_SECONDS: how long running jobs may finish on SIGTERM."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise SettingsError naming the first bad one."""
        env = _Env(environ)
        return cls(
            app_id=env.parse("GITHUB_APP_ID", _positive_int),
            private_key=_private_key(env),
            webhook_secrets=env.parse("GITHUB_WEBHOOK_SECRET", _secret_list),
            api_url=env.parse("GITHUB_API_URL", _http_url, DEFAULT_API_URL),
            database_url=env.parse(
                "CONNECTOR_GATE_DATABASE_URL", _database_url, DEFAULT_DATABASE_URL
            ),
            osv_url=env.parse("CONNECTOR_GATE_OSV_URL", _http_url, DEFAULT_OSV_URL),
            public_url=env.parse("CONNECTOR_GATE_PUBLIC_URL", _optional_http_url, ""),
            workers=env.parse("CONNECTOR_GATE_WORKERS", _non_negative_int, "2"),
            work_dir=env.parse("CONNECTOR_GATE_WORK_DIR", Path, str(DEFAULT_STATE_DIR / "work")),
            sqlite_synchronous=env.parse("CONNECTOR_GATE_SQLITE_SYNCHRONOUS", _sync, "NORMAL"),
            job_lease_seconds=env.parse("CONNECTOR_GATE_JOB_LEASE_SECONDS", _positive, "60"),
            job_max_attempts=env.parse("CONNECTOR_GATE_JOB_MAX_ATTEMPTS", _positive_int, "5"),
            shutdown_grace_seconds=env.parse(
                "CONNECTOR_GATE_SHUTDOWN_GRACE_SECONDS", _positive, "30"
            ),
        )


class _Env:
    """Looks variables up and turns parse failures into SettingsError naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str:
        return self._environ.get(name, "").strip()

    def parse(self, name: str, parser: Callable[[str], _T], default: str | None = None) -> _T:
        raw = self.get(name) or default
        if raw is None:
            raise SettingsError(name, "is required but not set")
        try:
            return parser(raw)
        except ValueError as err:
            # The parsers' messages describe the problem without echoing the value.
            raise SettingsError(name, str(err)) from None


def _positive_int(raw: str) -> int:
    value = _non_negative_int(raw)
    if value == 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError("must be a whole number")
    return int(raw)


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value > 0:
        raise ValueError("must be greater than zero")
    return value


def _secret_list(raw: str) -> tuple[str, ...]:
    secrets = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not secrets:
        raise ValueError("is required but empty")
    return secrets


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return raw.rstrip("/")


def _optional_http_url(raw: str) -> str:
    return _http_url(raw) if raw else ""


def _database_url(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("must start with sqlite:/// or postgresql://")
    if scheme == "sqlite" and not raw.startswith("sqlite:///"):
        raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
    return raw


def _sync(raw: str) -> SqliteSynchronous:
    upper = raw.upper()
    if upper == "NORMAL":
        return "NORMAL"
    if upper == "FULL":
        return "FULL"
    raise ValueError("must be NORMAL or FULL")


def _private_key(env: _Env) -> str:
    path = env.get("GITHUB_PRIVATE_KEY_PATH")
    if path:
        return env.parse("GITHUB_PRIVATE_KEY_PATH", _read_key_file)
    return env.parse("GITHUB_PRIVATE_KEY", _inline_key)


def _read_key_file(raw: str) -> str:
    try:
        pem = Path(raw).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the key file ({type(err).__name__})") from None
    return _validated_pem(pem)


def _inline_key(raw: str) -> str:
    # Environment files often carry the PEM on one line with literal "\n" separators.
    return _validated_pem(raw.replace("\\n", "\n"))


def _validated_pem(pem: str) -> str:
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not a PEM private key without a passphrase") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("must be an RSA private key (GitHub Apps sign with RS256)")
    return pem
