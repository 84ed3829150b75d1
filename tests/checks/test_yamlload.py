"""Strict YAML loading: refusals name the file and the line; values keep their key lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checks.errors import ConfigError
from checks.yamlload import (
    MAX_YAML_BYTES,
    UnknownKeyError,
    as_int,
    as_number,
    load_yaml_mapping,
    read_yaml_mapping,
    unknown_key_errors,
)

REFUSED = [
    # (case, content, line, words the message must contain)
    ("duplicate key", b"a: 1\nb: 2\na: 3\n", 3, ["duplicate key 'a'", "line 1"]),
    ("alias", b"a: &x [1, 2]\nb: *x\n", 2, ["aliases"]),
    ("alias bomb", b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", 2, ["aliases"]),
    ("unclosed flow list", b"name: x\negress: [a,\n", 3, ["invalid YAML"]),
    ("bad indentation", b"a:\n  b: 1\n c: 2\n", 3, ["invalid YAML"]),
    ("tab indentation", b"a:\n\tb: 1\n", 2, ["invalid YAML"]),
    ("top-level list", b"# c\n- a\n- b\n", 2, ["top level must be a mapping", "list"]),
    ("top-level scalar", b"just text\n", 1, ["top level must be a mapping", "single value"]),
    ("empty", b"# only a comment\n", 1, ["empty"]),
    ("binary", b"name: x\nversion: 1\x00\n", 2, ["binary", "NUL"]),
    ("latin-1", b"name: x\ndescription: caf\xe9\n", 2, ["UTF-8", "0xe9", "offset 24"]),
    ("python tag", b"a: 1\nb: !!python/object/apply:os.system [ls]\n", 2, ["not allowed"]),
    ("python scalar", b"a: !!python/name:os.system ''\n", 1, ["not allowed"]),
    ("binary tag", b"a: !!binary aGVsbG8=\n", 1, ["not allowed"]),
    ("custom tag", b"a: !secret x\n", 1, ["not allowed"]),
    ("set tag", b"a: !!set {x, y}\n", 1, ["tag"]),
    ("boolean key", b"a: 1\nyes: 2\n", 2, ["must be a plain string"]),
    ("integer key", b"1: x\n", 1, ["must be a plain string"]),
    ("merge key", b"a: 1\n<<: {b: 2}\n", 2, ["must be a plain string"]),
    ("control character", b"a: 1\nb: \x07\n", 2, ["unacceptable character"]),
    ("two documents", b"a: 1\n---\nb: 2\n", 2, ["single document"]),
    ("deep nesting", b"a: " + b"[" * 40 + b"]" * 40 + b"\n", 1, ["nested deeper"]),
    ("recursion bomb", b"a: " + b"[" * 20000 + b"\n", 1, ["nested too deeply"]),
    ("impossible date", b"a: 1\nexpires: 2025-13-40\n", 2, ["invalid value"]),
]


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refusals_name_file_and_line(content: bytes, line: int, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml_mapping(content, source="conf/x.yaml")
    error = caught.value
    assert error.file == "conf/x.yaml"
    assert error.line == line, str(error)
    for word in words:
        assert word in error.message, error.message
    assert str(error).startswith(f"conf/x.yaml:{line}: ")


def test_size_cap_names_size_and_cap() -> None:
    content = b"a: " + b"x" * MAX_YAML_BYTES + b"\n"
    with pytest.raises(ConfigError) as caught:
        load_yaml_mapping(content, source="big.yaml")
    assert caught.value.line == 1
    assert f"{len(content)} bytes" in caught.value.message
    assert f"{MAX_YAML_BYTES}-byte limit" in caught.value.message


def test_size_cap_applies_to_text_too() -> None:
    with pytest.raises(ConfigError, match="over the 10-byte limit"):
        load_yaml_mapping("a: 0123456789\n", source="s.yaml", max_bytes=10)


def test_values_and_lines() -> None:
    text = (
        "name: demo\n"
        "auth:\n"
        "  type: api_key\n"
        "  scopes: [a, b]\n"
        "egress:\n"
        "  - one.example\n"
        "  - two.example\n"
        "approvals:\n"
        "  - name: ops\n"
        "    teams:\n"
        "      - ops\n"
        "expires: 2030-01-31\n"
    )
    doc = load_yaml_mapping(text, source="d.yaml")
    assert doc.data["auth"] == {"type": "api_key", "scopes": ["a", "b"]}
    assert str(doc.data["expires"]) == "2030-01-31"
    assert doc.lines["auth.scopes"] == 4
    assert doc.lines["auth.scopes.1"] == 4
    assert doc.lines["egress.0"] == 6
    assert doc.lines["egress.1"] == 7
    assert doc.lines["approvals.0.teams"] == 10
    assert doc.lines["approvals.0.teams.0"] == 11
    assert doc.line_of("auth.missing") == 2  # falls back to the parent key
    assert doc.line_of("nowhere") == 1


def test_empty_allowed_when_asked() -> None:
    doc = load_yaml_mapping(b"# nothing set\n", source="r.yml", allow_empty=True)
    assert doc.data == {}


def test_utf8_bom_and_unicode_accepted() -> None:
    doc = load_yaml_mapping("\ufeffdescription: café ☕\n".encode(), source="u.yaml")
    assert doc.data == {"description": "café ☕"}


def test_anchor_without_alias_is_harmless() -> None:
    doc = load_yaml_mapping(b"a: &x 1\n", source="a.yaml")
    assert doc.data == {"a": 1}


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as caught:
        read_yaml_mapping(tmp_path / "nope.yaml", source="nope.yaml")
    assert caught.value.file == "nope.yaml"


def test_read_refuses_big_file_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_YAML_BYTES * 4)
    with pytest.raises(ConfigError, match=f"{MAX_YAML_BYTES * 4} bytes") as caught:
        read_yaml_mapping(big, source="big.yaml")
    assert caught.value.line == 1


def test_read_refuses_symlink_and_fifo(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("a: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        read_yaml_mapping(link, source="link.yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml_mapping(fifo, source="fifo.yaml")


def test_unknown_keys_suggest_the_closest() -> None:
    doc = load_yaml_mapping(b"name: x\nrunbok: R.md\nzzz: 1\n", source="m.yaml")
    errors = unknown_key_errors(doc, "", doc.data, ("name", "runbook"))
    assert [type(e) for e in errors] == [UnknownKeyError, UnknownKeyError]
    assert (errors[0].line, errors[0].key) == (2, "runbok")
    assert "did you mean 'runbook'?" in errors[0].message
    assert (errors[1].line, errors[1].key) == (3, "zzz")
    assert "did you mean" not in errors[1].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("n: true", "expected an integer, got the boolean true"), ("n: '3'", "got a string")],
)
def test_typed_readers_name_expected_type(text: str, expected: str) -> None:
    doc = load_yaml_mapping(text, source="t.yaml")
    with pytest.raises(ConfigError, match=expected) as caught:
        as_int(doc, "n", doc.data["n"])
    assert (caught.value.line, caught.value.key) == (1, "n")


def test_number_rejects_infinity() -> None:
    doc = load_yaml_mapping("n: .inf", source="t.yaml")
    with pytest.raises(ConfigError, match="finite"):
        as_number(doc, "n", doc.data["n"])
