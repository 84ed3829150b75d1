"""The sandbox on this host: isolation, limits, and hostile code kept in."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.sandbox import (
    Isolation,
    LimitHit,
    Limits,
    LocalSandbox,
    SandboxJob,
    detect_isolation,
    weak_isolation_refusal,
)
from checks.sandbox.env import sandbox_env
from checks.sandbox.venv import sandbox_interpreter
from tests.sandbox.helpers import sandbox_uid_processes

SECRET = "whsec-do-not-leak-4f1c2a9e"
KEY_TEXT = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAtestkeymaterial\n"
    "-----END RSA PRIVATE KEY-----\n"
)

PROBE = """
import os, socket
print("ENV", sorted(os.environ.items()))
for path in {paths!r}:
    try:
        with open(path) as handle:
            print("READ", path, handle.read())
    except OSError as exc:
        print("DENIED", path, exc.errno)
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
    print("NET open")
except OSError as exc:
    print("NET blocked", exc.errno)
try:
    with open("/proc/{bot_pid}/environ", "rb") as handle:
        print("BOTENV", handle.read())
except OSError as exc:
    print("BOTENV denied", exc.errno)
"""


def python() -> str:
    return str(sandbox_interpreter())


@pytest.fixture
def bot_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """The bot's environment as in production: a webhook secret and two key files."""
    private = tmp_path / "app-key.pem"
    private.write_text(KEY_TEXT)
    private.chmod(0o600)
    # A careless deployment: a world-readable copy; the mount namespace must still cover it.
    careless = Path("/tmp") / f"connector-gate-careless-{os.getpid()}.pem"
    careless.write_text(KEY_TEXT)
    careless.chmod(0o644)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GITHUB_PRIVATE_KEY_PATH", str(private))
    monkeypatch.setenv("CONNECTOR_GATE_PRIVATE_KEY_PATH", str(careless))
    monkeypatch.setenv("CONNECTOR_GATE_DATABASE_URL", f"postgresql://gate:{SECRET}@db/gate")
    yield {"private": private, "careless": careless}
    careless.unlink()


async def test_this_host_gives_network_and_uid_isolation() -> None:
    # Root with util-linux unshare (this machine and CI): the strongest local mode.
    assert os.geteuid() == 0
    assert await detect_isolation() is Isolation.NETNS_UID


async def test_hostile_code_reads_no_secret_and_reaches_no_network(
    workdir: Path, bot_secrets: dict[str, Path]
) -> None:
    paths = [str(bot_secrets["private"]), str(bot_secrets["careless"])]
    (workdir / "probe.py").write_text(PROBE.format(paths=paths, bot_pid=os.getpid()))
    outcome = await LocalSandbox().run(SandboxJob(argv=(python(), "probe.py"), source=workdir))
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 0, output
    assert SECRET not in output and "BEGIN RSA" not in output and "testkeymaterial" not in output
    assert "GITHUB" not in output and "CONNECTOR_GATE" not in output
    assert f"DENIED {paths[0]} 13" in output  # another uid cannot open the 0600 key
    assert f"READ {paths[1]} \n" in output  # the world-readable copy is covered by /dev/null
    assert "NET blocked 101" in output  # ENETUNREACH: only loopback exists in the namespace
    assert "BOTENV denied" in output  # the bot is not even visible in the pid namespace
    assert outcome.report.isolation is Isolation.NETNS_UID
    assert outcome.report.hidden_paths == tuple(sorted(paths))  # already real paths


async def test_loopback_works_inside(workdir: Path) -> None:
    code = (
        "import socket\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "client = socket.create_connection(server.getsockname(), timeout=1)\n"
        "print('loopback ok')\n"
    )
    (workdir / "lo.py").write_text(code)
    outcome = await LocalSandbox().run(SandboxJob(argv=(python(), "lo.py"), source=workdir))
    assert "loopback ok" in outcome.stdout, outcome.stderr


async def test_fork_bomb_is_contained_and_cleaned_up(workdir: Path) -> None:
    (workdir / "bomb.py").write_text("import os\nwhile True:\n    os.fork()\n")
    limits = Limits(wall_s=8, processes=64)
    started = time.monotonic()
    outcome = await LocalSandbox().run(
        SandboxJob(argv=(python(), "bomb.py"), source=workdir, limits=limits)
    )
    assert time.monotonic() - started < 20
    assert outcome.limit_hit in (LimitHit.WALL_CLOCK, LimitHit.PROCESSES)
    assert sandbox_uid_processes() == []  # the pid namespace took every copy with it
    assert os.fork is not None and os.getpid() > 0  # the bot still runs and can spawn
    assert (await LocalSandbox().run(SandboxJob(argv=("true",), source=workdir))).returncode == 0


async def test_infinite_loop_hits_the_wall_clock(workdir: Path) -> None:
    (workdir / "spin.py").write_text("while True:\n    pass\n")
    outcome = await LocalSandbox().run(
        SandboxJob(argv=(python(), "spin.py"), source=workdir, limits=Limits(wall_s=3, cpu_s=60))
    )
    assert outcome.limit_hit is LimitHit.WALL_CLOCK
    assert outcome.returncode == -1


async def test_cpu_limit_ends_a_busy_process(workdir: Path) -> None:
    (workdir / "spin.py").write_text("while True:\n    pass\n")
    outcome = await LocalSandbox().run(
        SandboxJob(argv=(python(), "spin.py"), source=workdir, limits=Limits(wall_s=30, cpu_s=1))
    )
    assert outcome.limit_hit is LimitHit.CPU


async def test_ten_gigabyte_write_stops_at_the_file_size_limit(workdir: Path) -> None:
    code = (
        "chunk = b'x' * 2**20\n"
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(10 * 1024):\n"
        "        f.write(chunk)\n"
    )
    (workdir / "fill.py").write_text(code)
    limits = Limits(file_size_bytes=32 * 1024**2)
    outcome = await LocalSandbox().run(
        SandboxJob(argv=(python(), "fill.py"), source=workdir, limits=limits)
    )
    assert outcome.returncode != 0
    assert outcome.limit_hit is LimitHit.FILE_SIZE
    assert "File too large" in outcome.stderr


async def test_memory_limit(workdir: Path) -> None:
    (workdir / "eat.py").write_text("x = bytearray(8 * 1024**3)\n")
    outcome = await LocalSandbox().run(
        SandboxJob(
            argv=(python(), "eat.py"), source=workdir, limits=Limits(memory_bytes=512 * 1024**2)
        )
    )
    assert outcome.limit_hit is LimitHit.MEMORY


async def test_output_is_capped(workdir: Path) -> None:
    (workdir / "loud.py").write_text("import sys\nsys.stdout.write('y' * 5_000_000)\n")
    outcome = await LocalSandbox().run(
        SandboxJob(argv=(python(), "loud.py"), source=workdir, limits=Limits(output_bytes=10_000))
    )
    assert len(outcome.stdout) == 10_000


async def test_job_works_on_a_copy(workdir: Path) -> None:
    (workdir / "data.txt").write_text("original")
    code = "open('data.txt', 'w').write('changed')\nopen('new.txt', 'w').write('x')\n"
    (workdir / "edit.py").write_text(code)
    outcome = await LocalSandbox().run(SandboxJob(argv=(python(), "edit.py"), source=workdir))
    assert outcome.returncode == 0, outcome.stderr
    assert (workdir / "data.txt").read_text() == "original"
    assert not (workdir / "new.txt").exists()


async def test_read_back_refuses_a_symlink(workdir: Path) -> None:
    code = "import os\nos.remove('{out}/result.txt')\n"
    (workdir / "swap.py").write_text(
        "import os, sys\n"
        "target = sys.argv[1]\n"
        "try:\n    os.remove(target)\nexcept OSError as e:\n    print('cannot remove', e.errno)\n"
        "open(target, 'w').write('fine')\n"
    )
    outcome = await LocalSandbox().run(
        SandboxJob(
            argv=(python(), "swap.py", "{out}/result.txt"), source=workdir, outputs=("result.txt",)
        )
    )
    assert "cannot remove 13" in outcome.stdout  # the read-back directory is not the job's
    assert outcome.files["result.txt"] == b"fine"
    assert code  # the job may fill its output file but never replace it with a link


async def test_weak_isolation_runs_but_says_so(workdir: Path) -> None:
    (workdir / "net.py").write_text("print('ran')\n")
    outcome = await LocalSandbox(isolation=Isolation.NONE).run(
        SandboxJob(argv=(sys.executable, "net.py"), source=workdir)
    )
    assert outcome.stdout.strip() == "ran"
    assert outcome.report.isolation is Isolation.NONE
    assert "host network" in outcome.report.describe()


@pytest.mark.parametrize(
    ("isolation", "is_fork", "allow", "refused"),
    [
        (Isolation.NETNS_UID, True, False, False),
        (Isolation.NETNS_USERNS, True, False, False),
        (Isolation.UID, True, False, True),
        (Isolation.NONE, True, False, True),
        (Isolation.NONE, True, True, False),
        (Isolation.NONE, False, False, False),
    ],
)
def test_fork_policy(isolation: Isolation, is_fork: bool, allow: bool, refused: bool) -> None:
    reason = weak_isolation_refusal(isolation, is_fork=is_fork, allow_weak=allow)
    assert bool(reason) is refused


def test_environment_refuses_secret_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GITHUB_TOKEN"):
        sandbox_env(home=tmp_path, extra={"GITHUB_TOKEN": "x"})
    env = sandbox_env(home=tmp_path, path_prefix=("/venv/bin",), extra={"BASE_URL": "http://x"})
    assert env["PATH"].startswith("/venv/bin:") and env["VIRTUAL_ENV"] == "/venv"
    assert set(env) >= {"HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "BASE_URL"}
