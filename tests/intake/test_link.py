"""The intake ↔ workers line protocol: config, status answers, and the intake's end of it."""

from __future__ import annotations

import asyncio
import os

import pytest

from bot.intake import link
from bot.intake.link import (
    UNREACHABLE,
    IntakeConfig,
    WorkersLink,
    WorkersStatus,
    decode_status,
    encode_status,
    read_config,
)

CONFIG = IntakeConfig(
    host="127.0.0.1",
    port=8080,
    webhook_secrets=("old", "new"),
    sqlite_file="/var/lib/gate.db",
    database_url="sqlite:////var/lib/gate.db",
    sqlite_synchronous="NORMAL",
)


def test_the_config_survives_its_line() -> None:
    line = CONFIG.to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert IntakeConfig.from_line(line) == CONFIG


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"host": "x"}\n', "lacks a field"),
        (b"not json\n", "Expecting value"),
    ],
)
def test_a_bad_config_line_is_refused(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        IntakeConfig.from_line(line)


def test_read_config_consumes_nothing_after_the_first_line() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, CONFIG.to_line() + b"1 {}\n")
    os.close(write_end)
    try:
        assert read_config(read_end) == CONFIG
        assert os.read(read_end, 100) == b"1 {}\n"
    finally:
        os.close(read_end)


def test_read_config_names_an_input_that_ends_too_soon() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"host": ')
    os.close(write_end)
    try:
        with pytest.raises(ValueError, match="ended before the intake config"):
            read_config(read_end)
    finally:
        os.close(read_end)


def test_a_status_answer_round_trips() -> None:
    status = WorkersStatus(database="ok", workers="running", metrics="# HELP x y\nx 1.0\n")
    assert decode_status(encode_status(12, status).rstrip(b"\n")) == (12, status)


@pytest.mark.parametrize(
    ("database", "workers", "ready"),
    [
        ("ok", "running", True),
        ("ok", "none", True),
        ("ok", "stopped", False),
        ("ok", "unreachable", False),
        ("unreachable", "running", False),
        ("unknown", "unreachable", False),
    ],
)
def test_ready_needs_the_database_and_no_stopped_worker(
    database: str, workers: str, ready: bool
) -> None:
    assert WorkersStatus(database=database, workers=workers).ready is ready


async def test_a_status_request_is_answered_by_its_number() -> None:
    sent: list[bytes] = []
    workers = WorkersLink(sent.append)
    asking = asyncio.create_task(workers.status())
    await asyncio.sleep(0)
    assert sent == [b"status 1\n"]
    # An answer to another number is not this one's; a broken line is skipped.
    workers.data_received(b"7 {}\ngarbage\n1 " + b'{"database": "ok", "workers": "none"}')
    workers.data_received(b"\n")
    assert await asking == WorkersStatus(database="ok", workers="none")


async def test_concurrent_requests_each_get_their_own_answer() -> None:
    sent: list[bytes] = []
    workers = WorkersLink(sent.append)
    first = asyncio.create_task(workers.status())
    second = asyncio.create_task(workers.status())
    await asyncio.sleep(0)
    assert sent == [b"status 1\n", b"status 2\n"]
    workers.data_received(b'2 {"database": "ok", "workers": "stopped"}\n')
    assert (await second).workers == "stopped"
    workers.data_received(b'1 {"database": "ok", "workers": "running"}\n')
    assert (await first).workers == "running"
    assert not workers._waiting, "answered requests leave nothing behind"


async def test_no_answer_in_time_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link, "STATUS_TIMEOUT_S", 0.01)
    assert await WorkersLink(lambda _line: None).status() == UNREACHABLE


async def test_the_end_of_input_closes_the_link_and_stops_asking() -> None:
    sent: list[bytes] = []
    workers = WorkersLink(sent.append)
    workers.eof_received()
    assert workers.closed.is_set()
    assert await workers.status() == UNREACHABLE
    assert sent == []


async def test_a_burst_of_stored_deliveries_wakes_the_workers_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link, "STORED_INTERVAL_S", 0.05)
    sent: list[bytes] = []
    workers = WorkersLink(sent.append)
    for _ in range(5):
        workers.delivery_stored()
    await asyncio.sleep(0.001)
    assert sent == [b"stored\n"], "the first of a quiet spell goes at once"
    for _ in range(5):
        workers.delivery_stored()
        await asyncio.sleep(0.001)
    assert sent == [b"stored\n"], "the rest of the burst waits for the interval"
    await asyncio.sleep(0.07)
    assert sent == [b"stored\n", b"stored\n"]


def test_a_sent_line_stays_one_line() -> None:
    sent: list[bytes] = []
    WorkersLink(sent.append).send("failed first\nsecond")
    assert sent == [b"failed first second\n"]
