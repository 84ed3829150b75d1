"""Strict, bounded YAML loading with the line of every key, and typed readers for its values."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from checks.errors import ConfigError

MAX_YAML_BYTES = 256 * 1024
"""Largest YAML file accepted; config files are small, anything bigger is refused unread."""

MAX_DEPTH = 32
"""Deepest nesting accepted; no config here needs more than a handful of levels."""

T = TypeVar("T")

MISSING: object = object()
"""Sentinel for an absent key, distinct from an explicit `null`."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
#: Plain data only; `!!binary`, `!!python/...` and custom tags are refused.
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A loaded YAML mapping, with where each key came from."""

    data: Mapping[str, object]
    """Plain Python values: dict, list, str, int, float, bool, None, date."""
    lines: Mapping[str, int]
    """Line (1-based) of each key or list item, by dotted path (`auth.scopes`, `egress.0`)."""
    source: str
    """File the document was read from, as shown in messages."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Per top-level key, the file it came from when layers were merged (else `source`)."""

    def line_of(self, path: str) -> int:
        """Line of `path`, falling back to its parent keys, then to line 1."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0]
        return 1

    def file_of(self, path: str) -> str:
        """File that holds `path` (the layer its top-level key came from)."""
        return self.sources.get(path.partition(".")[0], self.source)

    def error(self, path: str, message: str) -> ConfigError:
        """A ConfigError naming the file, line and key of `path`."""
        return ConfigError(message, file=self.file_of(path), line=self.line_of(path), key=path)


class UnknownKeyError(ConfigError):
    """A key the schema does not know (often a typo; the message suggests the closest key)."""


# ---------------------------------------------------------------------------------------------
# Loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, so no `billion laughs` expansion is possible."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed; write the value out", mark
            )
        return super().compose_node(parent, index)


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes, source: str, max_bytes: int) -> str:
    """Refuse oversized, binary or non-UTF-8 content before YAML sees it."""
    if len(data) > max_bytes:
        raise ConfigError(
            f"file is {len(data)} bytes, over the {max_bytes}-byte limit", file=source, line=1
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ConfigError(
            f"binary content (NUL byte at offset {nul}); expected UTF-8 YAML text",
            file=source,
            line=_line_at(data, nul),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            file=source,
            line=_line_at(data, exc.start),
        ) from None


def _compose(text: str, source: str) -> Node | None:
    """Parse to a node tree, turning every YAML error into a ConfigError with its line."""
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(
            f"invalid YAML: {problem or 'syntax error'}", file=source, line=line
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"invalid YAML: unacceptable character #x{exc.character:04x}",
            file=source,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=source, line=1) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", file=source, line=1) from None


class _Converter:
    """Turns a node tree into plain values, recording the line of every key and item."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self._constructor = yaml.SafeLoader("")

    def fail(self, node: Node, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, line=node.start_mark.line + 1)

    def value(self, node: Node, path: str, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return self.sequence(node, path, depth)
        return self.scalar(node)

    def mapping(self, node: MappingNode, path: str, depth: int) -> dict[str, object]:
        if node.tag != _MAP_TAG:
            raise self.fail(node, f"tag {node.tag} is not allowed here")
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node)
            child = f"{path}.{key}" if path else key
            if key in out:
                first = self.lines[child]
                raise self.fail(key_node, f"duplicate key '{key}' (first given at line {first})")
            self.lines[child] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, child, depth + 1)
        return out

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR_TAG:
            shown = node.value if isinstance(node, ScalarNode) else "a collection"
            raise self.fail(node, f"key {shown!r} must be a plain string (quote it if needed)")
        return str(node.value)

    def sequence(self, node: SequenceNode, path: str, depth: int) -> list[object]:
        if node.tag != _SEQ_TAG:
            raise self.fail(node, f"tag {node.tag} is not allowed here")
        items: list[object] = []
        for index, item in enumerate(node.value):
            child = f"{path}.{index}" if path else str(index)
            self.lines[child] = item.start_mark.line + 1
            items.append(self.value(item, child, depth + 1))
        return items

    def scalar(self, node: Node) -> object:
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, f"tag {node.tag} is not allowed here")
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise self.fail(node, f"invalid value: {exc}".splitlines()[0]) from None


def load_yaml_mapping(
    content: str | bytes,
    *,
    source: str,
    max_bytes: int = MAX_YAML_BYTES,
    allow_empty: bool = False,
) -> YamlDocument:
    """Load YAML whose top level is a mapping; every refusal is a ConfigError with a line."""
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    text = _decode(data, source, max_bytes)
    root = _compose(text, source)
    if root is None:
        if allow_empty:
            return YamlDocument(data={}, lines={}, source=source)
        raise ConfigError("the file is empty; expected a mapping of keys", file=source, line=1)
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        raise ConfigError(
            f"the top level must be a mapping of keys, not {kind}",
            file=source,
            line=root.start_mark.line + 1,
        )
    converter = _Converter(source)
    mapping = converter.mapping(root, "", 0)
    return YamlDocument(data=mapping, lines=converter.lines, source=source)


def read_bounded(
    path: Path, *, source: str, max_bytes: int = MAX_YAML_BYTES, follow_symlinks: bool = False
) -> bytes:
    """Read a regular file of at most `max_bytes`, refusing FIFOs, big files and symlinks.

    Symlinks are refused by default because connector trees come from untrusted pull requests.
    """
    try:
        info = path.stat() if follow_symlinks else path.lstat()
    except FileNotFoundError:
        raise ConfigError("file not found", file=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=source) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise ConfigError(f"refused: {kind}", file=source)
    if info.st_size > max_bytes:
        raise ConfigError(
            f"file is {info.st_size} bytes, over the {max_bytes}-byte limit", file=source, line=1
        )
    try:
        no_follow = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, os.O_RDONLY | no_follow)
        with os.fdopen(fd, "rb") as handle:
            # One byte more than allowed, so a file that grew since lstat is still caught.
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=source) from None


def read_yaml_mapping(
    path: Path, *, source: str, max_bytes: int = MAX_YAML_BYTES, allow_empty: bool = False
) -> YamlDocument:
    """Read and load a YAML mapping file (see `load_yaml_mapping`)."""
    data = read_bounded(path, source=source, max_bytes=max_bytes)
    return load_yaml_mapping(data, source=source, max_bytes=max_bytes, allow_empty=allow_empty)


# ---------------------------------------------------------------------------------------------
# Typed readers: each takes the document, the dotted path and the raw value, and either
# returns the typed value or raises a ConfigError naming the file, line, key and expected type.


def describe(value: object) -> str:
    """How a raw YAML value is named in messages (`a list`, `the number 1.5`...)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def wrong_type(doc: YamlDocument, path: str, expected: str, value: object) -> ConfigError:
    """Error for a value of the wrong type."""
    return doc.error(path, f"expected {expected}, got {describe(value)}")


def require(doc: YamlDocument, path: str, value: object) -> object:
    """The value, or an error when the key is absent."""
    if value is MISSING:
        raise doc.error(path, "required key is missing")
    return value


def suggestion(key: str, valid: Collection[str]) -> str:
    """` (did you mean 'x'?)` for the closest valid key, or nothing."""
    close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key_errors(
    doc: YamlDocument, path: str, mapping: Mapping[str, object], valid: Collection[str]
) -> list[UnknownKeyError]:
    """One error per unknown key, each with the closest valid key when there is one."""
    errors = []
    for key in mapping:
        if key not in valid:
            child = f"{path}.{key}" if path else key
            allowed = ", ".join(sorted(valid))
            message = f"unknown key '{key}'{suggestion(key, valid)}; valid keys: {allowed}"
            errors.append(
                UnknownKeyError(
                    message, file=doc.file_of(child), line=doc.line_of(child), key=child
                )
            )
    return errors


def check_keys(
    doc: YamlDocument, path: str, mapping: Mapping[str, object], valid: Collection[str]
) -> None:
    """Raise for the first unknown key of `mapping`."""
    errors = unknown_key_errors(doc, path, mapping, valid)
    if errors:
        raise errors[0]


def as_mapping(doc: YamlDocument, path: str, value: object) -> Mapping[str, object]:
    """A mapping (keys are strings by construction)."""
    if not isinstance(value, dict):
        raise wrong_type(doc, path, "a mapping", value)
    return value


def as_list(doc: YamlDocument, path: str, value: object) -> list[object]:
    """A list."""
    if not isinstance(value, list):
        raise wrong_type(doc, path, "a list", value)
    return value


def as_str(doc: YamlDocument, path: str, value: object, *, allow_empty: bool = False) -> str:
    """A string, non-blank unless `allow_empty`."""
    if not isinstance(value, str):
        raise wrong_type(doc, path, "a string", value)
    if not allow_empty and not value.strip():
        raise doc.error(path, "must not be empty")
    return value


def as_str_list(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    """A list of non-blank strings."""
    items = as_list(doc, path, value)
    return tuple(as_str(doc, f"{path}.{i}", item) for i, item in enumerate(items))


def as_bool(doc: YamlDocument, path: str, value: object) -> bool:
    """true or false (YAML booleans only, not strings or numbers)."""
    if not isinstance(value, bool):
        raise wrong_type(doc, path, "true or false", value)
    return value


def as_int(doc: YamlDocument, path: str, value: object, *, minimum: int | None = None) -> int:
    """An integer (not a boolean), at least `minimum` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(doc, path, "an integer", value)
    if minimum is not None and value < minimum:
        raise doc.error(path, f"must be at least {minimum}, got {value}")
    return value


def as_number(doc: YamlDocument, path: str, value: object) -> float:
    """A finite number (integer or decimal, not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(doc, path, "a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise doc.error(path, f"must be a finite number, got {value}")
    return number


def as_choice(doc: YamlDocument, path: str, value: object, choices: Collection[str]) -> str:
    """One string out of `choices`, with a suggestion when it is close to one."""
    text = as_str(doc, path, value)
    if text not in choices:
        allowed = ", ".join(choices)
        raise doc.error(path, f"'{text}' is not one of: {allowed}{suggestion(text, choices)}")
    return text


def read_required(
    doc: YamlDocument,
    path: str,
    mapping: Mapping[str, object],
    key: str,
    read: Callable[[YamlDocument, str, object], T],
) -> T:
    """`mapping[key]` read by `read`; an absent key is an error naming it."""
    child = f"{path}.{key}" if path else key
    return read(doc, child, require(doc, child, mapping.get(key, MISSING)))


def read_optional(
    doc: YamlDocument,
    path: str,
    mapping: Mapping[str, object],
    key: str,
    read: Callable[[YamlDocument, str, object], T],
    default: T,
) -> T:
    """`mapping[key]` read by `read`, or `default` when the key is absent."""
    child = f"{path}.{key}" if path else key
    return read(doc, child, mapping[key]) if key in mapping else default
