"""Time `connector-gate check` against detect-secrets, pip-audit and bandit run alone.

Run: `uv run python bench/check_speed.py [--runs N] [--files N] [--megabytes N]`.
Prints figures and PASS/MISS against the targets; it asserts nothing and is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from checks.secrets import scan_secrets

ROOT = Path(__file__).resolve().parents[1]
CONNECTORS = Path("examples/connectors")
RULES = Path("examples/connector-gate.yml")
CHECKS = "manifest,secrets,dependencies,static"

#: Targets: cold check within 1.5x the slowest raw tool, warm check under 0.3 s, in-process
#: secrets scan at least as fast as the detect-secrets CLI.
COLD_RATIO_TARGET = 1.5
WARM_TARGET_S = 0.3
THROUGHPUT_TARGET = 1.0

#: Share of synthetic files that get a planted fake credential.
PLANT_EVERY = 20


@dataclass(frozen=True, slots=True)
class Run:
    """One finished subprocess."""

    wall_s: float
    """Wall-clock seconds from spawn to exit, interpreter start-up included."""
    returncode: int
    """Exit status."""
    stdout: bytes
    """Everything it printed on stdout."""
    peak_rss_kib: int
    """Largest resident set of the process or any descendant it waited for (KiB)."""
    cpu_s: float = 0.0
    """User + system CPU seconds of the process and the descendants it waited for."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Repeated measurements of one thing."""

    label: str
    """What was measured, as shown in the table."""
    walls: tuple[float, ...]
    """Wall-clock seconds of each run."""
    peak_rss_kib: int = 0
    """Largest peak RSS over the runs (0: not measured)."""
    cpus: tuple[float, ...] = ()
    """CPU seconds of each run (empty: not measured); steadier than walls on a busy machine."""

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def bin_tool(name: str) -> str:
    """A console script of this environment (the one running the benchmark)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def tool_environment(pycache: Path | None) -> dict[str, str]:
    """The environment of every timed command: with `pycache`, bytecode is cached there.

    An installed tool starts from compiled bytecode. A development shell often sets
    PYTHONDONTWRITEBYTECODE, and then every start recompiles whichever modules changed since
    their last `.pyc`, which is noise of the checkout, not a cost of the tool. The prefix keeps
    the bytecode out of the source tree.
    """
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run(argv: Sequence[str], env: dict[str, str], *, cwd: Path = ROOT) -> Run:
    """Run `argv` to completion; its own rusage comes from wait4, not the bench's children."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Run(wall, process.returncode, out.read(), usage.ru_maxrss, cpu)


def repeat(label: str, runs: int, once: Callable[[], Sequence[Run]], *, warm_up: bool) -> Timing:
    """`runs` measurements; `once` may run several commands whose walls add up (one tool).

    The warm-up run, not counted, fills the page cache and the bytecode cache.
    """
    if warm_up:
        once()
    walls: list[float] = []
    cpus: list[float] = []
    peak = 0
    for _ in range(runs):
        done = once()
        walls.append(sum(r.wall_s for r in done))
        cpus.append(sum(r.cpu_s for r in done))
        peak = max([peak, *(r.peak_rss_kib for r in done)])
    return Timing(label, tuple(walls), peak, tuple(c for c in cpus if c))


# --- the local OSV service --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    limit = time.monotonic() + deadline_s
    while time.monotonic() < limit:
        if process.poll() is not None:
            raise RuntimeError(f"the OSV server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the OSV server did not listen on port {port} within {deadline_s} s")


@contextlib.contextmanager
def osv_service() -> Iterator[str]:
    """The stored-advisory OSV server in its own process (the bench blocks on subprocesses)."""
    port = _free_port()
    argv = [sys.executable, "-m", "tests.support.osv_server", "--port", str(port)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port, server, deadline_s=20.0)
        yield f"http://127.0.0.1:{port}/v1/query"
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- 1. the raw tools alone -------------------------------------------------------------------


def requirements_files() -> list[Path]:
    return sorted((ROOT / CONNECTORS).glob("*/requirements.txt"))


def time_raw_tools(runs: int, osv_url: str, env: dict[str, str]) -> list[Timing]:
    secrets = [bin_tool("detect-secrets"), "scan", "--all-files", str(CONNECTORS)]
    bandit = [bin_tool("bandit"), "-r", str(CONNECTORS), "-f", "json", "-q"]
    audit_options = ["--no-deps", "--disable-pip", "--format", "json"]
    audit_options += ["--vulnerability-service", "osv", "--osv-url", osv_url]
    audits = [[bin_tool("pip-audit"), "-r", str(p), *audit_options] for p in requirements_files()]
    return [
        repeat("detect-secrets scan --all-files", runs, lambda: [run(secrets, env)], warm_up=True),
        repeat(
            f"pip-audit (sum of {len(audits)} connectors)",
            runs,
            lambda: [run(a, env) for a in audits],
            warm_up=True,
        ),
        repeat("bandit -r", runs, lambda: [run(bandit, env)], warm_up=True),
    ]


# --- 2. connector-gate check, cold and warm ---------------------------------------------------


def check_argv(osv_url: str, cache_dir: Path) -> list[str]:
    return [
        bin_tool("connector-gate"),
        "check",
        str(CONNECTORS),
        "--rules",
        str(RULES),
        "--only",
        CHECKS,
        "--osv-url",
        osv_url,
        "--format",
        "json",
        "--cache-dir",
        str(cache_dir),
    ]


def report_problems(done: Run, *, cached: bool) -> list[str]:
    """Why a run's figure would not mean what it claims (empty when it is sound)."""
    try:
        report = json.loads(done.stdout)
        results = [r for c in report["connectors"] for r in c["results"]]
    except (ValueError, KeyError, TypeError):
        return [f"unreadable report (exit {done.returncode})"]
    problems = [
        f"{r['check']}: {r['conclusion']}: {r['summary']}"
        for r in results
        if r["conclusion"] in ("error", "neutral")
    ]
    problems += [
        f"{r['check']} {'recomputed' if cached else 'came from the cache'}"
        for r in results
        if bool(r.get("cached")) is not cached
    ]
    return problems


def _checked(done: Run, *, cached: bool, label: str) -> Run:
    for problem in report_problems(done, cached=cached):
        print(f"warning: {label} run: {problem}", file=sys.stderr)
    return done


def time_check(
    runs: int, osv_url: str, env: dict[str, str], scratch: Path
) -> tuple[Timing, Timing]:
    """(cold, warm): each cold run gets an empty cache; warm runs reuse the last cold one's."""
    caches = iter(range(runs + 1))

    def cold() -> list[Run]:
        cache = scratch / f"cold-{next(caches)}"
        return [_checked(run(check_argv(osv_url, cache), env), cached=False, label="cold")]

    cold_timing = repeat("connector-gate check (cold)", runs, cold, warm_up=True)
    warm_cache = scratch / f"cold-{runs}"

    def warm() -> list[Run]:
        return [_checked(run(check_argv(osv_url, warm_cache), env), cached=True, label="warm")]

    return cold_timing, repeat("connector-gate check (warm)", runs, warm, warm_up=False)


# --- 3. secrets scan throughput ---------------------------------------------------------------


def _fake_credentials(rng: random.Random) -> list[str]:
    # Assembled at run time so this file holds no credential-shaped literal.
    upper = string.ascii_uppercase + string.digits
    alnum = string.ascii_letters + string.digits
    aws = "AK" + "IA" + "".join(rng.choices(upper, k=16))
    github = "gh" + "p_" + "".join(rng.choices(alnum, k=36))
    password = "".join(rng.choices(alnum, k=14))
    return [
        f'AWS_ACCESS_KEY_ID = "{aws}"',
        f'GITHUB_TOKEN = "{github}"',
        f'db_password = "{password}"',
    ]


def _code_line(rng: random.Random, index: int) -> str:
    word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))
    kind = rng.randrange(200)
    if kind == 0:
        # Real code has the odd digest or token-like constant; a tree full of them would
        # measure how fast hits are recorded rather than how fast text is scanned.
        return f'    checksum = "{rng.getrandbits(128):032x}"'
    templates = (
        f"def {word}_{index}(value, limit={rng.randint(1, 999)}):",
        f'    message = "{word} reached {{}} of {{}} items".format(value, limit)',
        f"    # {word} keeps the {word}s ordered so a retry sees the same page",
        f"    result[{index}] = compute_{word}(value) + {rng.random():.6f}",
        f"    return {{'id': {index}, 'name': '{word}', 'enabled': True}}",
        f"    logger.info('{word} done', extra={{'count': len(result)}})",
        f"from .{word} import {word.capitalize()}Client, {word}_settings",
    )
    return templates[kind % len(templates)]


def _file_text(rng: random.Random, size: int, planted: bool) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = _code_line(rng, len(lines))
        lines.append(line)
        total += len(line) + 1
    if planted:
        for credential in _fake_credentials(rng):
            lines.insert(rng.randrange(len(lines)), credential)
    return "\n".join(lines) + "\n"


def build_tree(directory: Path, files: int, megabytes: float, seed: int = 7) -> tuple[int, int]:
    """Write `files` text files of about `megabytes` in total; (bytes, files with fake keys)."""
    rng = random.Random(seed)
    mean = int(megabytes * 1024 * 1024 / files)
    written = planted = 0
    suffixes = (".py", ".py", ".py", ".txt", ".md", ".cfg")
    for index in range(files):
        folder = directory / f"pkg{index % 16:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        plant = index % PLANT_EVERY == 0
        text = _file_text(rng, rng.randint(mean // 2, mean * 3 // 2), plant)
        path = folder / f"module_{index:03d}{suffixes[index % len(suffixes)]}"
        written += path.write_text(text, "utf-8")
        planted += plant
    return written, planted


def _cli_hits(done: Run) -> int:
    return sum(len(found) for found in json.loads(done.stdout)["results"].values())


def _in_process_scan(tree: Path) -> tuple[Run, int]:
    started = time.perf_counter()
    scan = asyncio.run(scan_secrets(tree))
    wall = time.perf_counter() - started
    # No RSS: it would be this process's whole lifetime, not the scan's.
    return Run(wall, 0, b"", 0), len(scan.hits) + scan.accepted_by_baseline


def time_throughput(runs: int, tree: Path, env: dict[str, str]) -> tuple[Timing, Timing, int, int]:
    """(CLI, ours, hits by the CLI, hits by ours) over the synthetic tree."""
    cli_hits: list[int] = []
    our_hits: list[int] = []

    def cli() -> list[Run]:
        done = run([bin_tool("detect-secrets"), "scan", "--all-files", "."], env, cwd=tree)
        cli_hits.append(_cli_hits(done))
        return [done]

    def ours() -> list[Run]:
        done, hits = _in_process_scan(tree)
        our_hits.append(hits)
        return [done]

    # No warm-up: the tool timings already compiled detect-secrets and warmed the imports.
    cli_timing = repeat("detect-secrets scan --all-files (CLI)", runs, cli, warm_up=False)
    our_timing = repeat("checks.secrets.scan_secrets (in-process)", runs, ours, warm_up=False)
    return cli_timing, our_timing, max(cli_hits), max(our_hits)


# --- 4. the table -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def timing_row(timing: Timing) -> str:
    rss = f"{timing.peak_rss_kib / 1024:7.1f} MiB" if timing.peak_rss_kib else ""
    cpu = f"{statistics.median(timing.cpus):7.3f} s" if timing.cpus else ""
    return f"  {timing.label:44} {timing.best:7.3f} s {timing.median:7.3f} s {cpu:>9}  {rss}"


def print_tool_table(raw: Sequence[Timing], cold: Timing, warm: Timing) -> None:
    print(f"  {'tool':44} {'best':>9} {'median':>9} {'CPU':>9}  {'peak RSS':>11}")
    for timing in (*raw, cold, warm):
        print(timing_row(timing))


def print_targets(raw: Sequence[Timing], cold: Timing, warm: Timing) -> None:
    slowest = max(raw, key=lambda t: t.best)
    ratio = cold.best / slowest.best
    print("\nTargets (from the best run of each, the least disturbed by other load):")
    print(
        f"  cold check / slowest raw tool ({slowest.label}): {ratio:5.2f}x"
        f"  (target <= {COLD_RATIO_TARGET}x)  {verdict(ratio <= COLD_RATIO_TARGET)}"
    )
    print(
        f"  warm check: {warm.best:6.3f} s"
        f"  (target < {WARM_TARGET_S} s)  {verdict(warm.best < WARM_TARGET_S)}"
    )
    raw_sum = sum(t.best for t in raw)
    print(f"  for reference, the raw tools one after another: {raw_sum:6.3f} s")
    raw_cpu = sum(statistics.median(t.cpus) for t in raw if t.cpus)
    if raw_cpu and cold.cpus:
        cpu_ratio = statistics.median(cold.cpus) / raw_cpu
        print(f"  CPU of the cold check / CPU of all raw tools (medians): {cpu_ratio:5.2f}x")


def print_throughput(
    cli: Timing, ours: Timing, size: int, files: int, hits: tuple[int, int]
) -> None:
    mib = size / (1024 * 1024)
    print(f"\nSecrets scan throughput ({files} files, {mib:.1f} MiB):")
    print(f"  {'scanner':44} {'best':>9} {'files/s':>9} {'MiB/s':>7}  {'hits':>5}")
    for timing, found in ((cli, hits[0]), (ours, hits[1])):
        rate = files / timing.best
        print(
            f"  {timing.label:44} {timing.best:7.3f} s {rate:9.0f} "
            f"{mib / timing.best:7.2f}  {found:5d}"
        )
    speedup = cli.best / ours.best
    print(
        f"  ours vs CLI: {speedup:5.2f}x  (target >= {THROUGHPUT_TARGET}x)  "
        f"{verdict(speedup >= THROUGHPUT_TARGET)}"
    )
    if hits[0] != hits[1]:
        print(f"  warning: the scanners disagree on the number of hits ({hits[0]} vs {hits[1]})")


# --- main -------------------------------------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--files", type=int, default=400, help="synthetic tree: file count")
    parser.add_argument("--megabytes", type=float, default=8.0, help="synthetic tree: size")
    parser.add_argument("--skip-throughput", action="store_true", help="only the tool timings")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="keep the inherited environment (e.g. PYTHONDONTWRITEBYTECODE) for the commands",
    )
    return parser.parse_args(argv)


def _machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpus} CPU(s) available, load average {load}; Python {sys.version.split()[0]}"


def main(argv: Sequence[str] | None = None) -> None:
    args = _arguments(argv)
    bytecode = "as inherited" if args.as_is else "cached (as installed)"
    print(f"Machine: {_machine()}")
    print(f"{args.runs} timed run(s) of each after a warm-up; bytecode {bytecode}\n")
    with tempfile.TemporaryDirectory(prefix="connector-gate-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        env = tool_environment(None if args.as_is else scratch / "pycache")
        with osv_service() as osv_url:
            raw = time_raw_tools(args.runs, osv_url, env)
            cold, warm = time_check(args.runs, osv_url, env, scratch)
        print_tool_table(raw, cold, warm)
        print_targets(raw, cold, warm)
        if args.skip_throughput:
            return
        tree = scratch / "tree"
        size, planted = build_tree(tree, args.files, args.megabytes)
        cli, ours, cli_hits, our_hits = time_throughput(args.runs, tree, env)
        print_throughput(cli, ours, size, args.files, (cli_hits, our_hits))
        print(f"  ({planted} files carry 3 planted fake credentials each)")


if __name__ == "__main__":
    main()
