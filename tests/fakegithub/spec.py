"""The OpenAPI subset: route matching, request/response validation and example payloads."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "github-openapi-subset.json"
HOST_URL = "https://api.github.com"
_METHODS = ("get", "post", "patch", "put", "delete")

#: Operations whose upstream examples do not match their own schema (see the fixture README);
#: responses built from those examples are not schema-checked.
UNCHECKED_RESPONSES = frozenset(
    {
        "apps/list-installations",
        "repos/get-collaborator-permission-level",
        "repos/get-content",
        "pulls/list",
        "pulls/get",
    }
)


@dataclass(frozen=True)
class Operation:
    """One operation of the subset."""

    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]

    def params(self, path: str) -> dict[str, str]:
        match = self.pattern.fullmatch(path)
        return dict(match.groupdict()) if match else {}


def _compile(template: str) -> re.Pattern[str]:
    # The contents API addresses nested files with real slashes, which OpenAPI 3.0 cannot say.
    multi_segment = template.endswith("/contents/{path}")
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        regex += re.escape(literal)
        if name:
            body = ".+" if (multi_segment and name == "path") else "[^/]+"
            regex += f"(?P<{name}>{body})"
    return re.compile(regex)


@dataclass(frozen=True)
class Spec:
    """Loaded subset with an operation table."""

    document: Mapping[str, Any]
    openapi: OpenAPI
    operations: tuple[Operation, ...]

    def find(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.lower() and op.pattern.fullmatch(path):
                return op
        return None

    def request_errors(
        self,
        op: Operation,
        path: str,
        query: Mapping[str, str],
        body: bytes,
        content_type: str,
    ) -> list[str]:
        request = MockRequest(
            HOST_URL,
            op.method,
            _spec_path(op, path),
            args=dict(query),
            data=body or None,
            content_type=content_type or "application/json",
        )
        return [_describe(e) for e in self.openapi.iter_request_errors(request)]

    def response_errors(
        self, op: Operation, path: str, status: int, body: bytes, headers: Mapping[str, str]
    ) -> list[str]:
        request = MockRequest(HOST_URL, op.method, _spec_path(op, path))
        response = MockResponse(
            body, status_code=status, headers=dict(headers), content_type="application/json"
        )
        errors = self.openapi.iter_response_errors(request, response)
        return [text for e in errors if (text := _describe(e, _NULLABLE_ENUM_QUIRK))]

    def example(self, name: str) -> Any:
        """A deep copy of `components/examples/<name>` (an object or a list of objects)."""
        return copy.deepcopy(self.document["components"]["examples"][name]["value"])

    def example_object(self, name: str) -> dict[str, Any]:
        """A deep copy of an object example (the first item of a list example)."""
        value = self.example(name)
        return dict(value[0] if isinstance(value, list) else value)


def _spec_path(op: Operation, path: str) -> str:
    if "path" not in op.pattern.groupindex:
        return path
    params = op.params(path)
    prefix = path[: len(path) - len(params["path"])]
    return prefix + quote(params["path"], safe="")


#: OpenAPI 3.0.3 wants `null` listed in a nullable enum; GitHub's description omits it (e.g.
#: check-run `conclusion`), so a null there is the description's quirk, not a bad response.
_NULLABLE_ENUM_QUIRK = "None is not one of"


def _describe(error: Exception, ignore: str = "") -> str:
    """Readable error text; empty when every schema error contains `ignore`."""
    cause = error.__cause__
    detail = f": {cause}" if cause is not None else ""
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        messages = [str(getattr(e, "message", e)) for e in schema_errors]
        kept = [m for m in messages if not (ignore and ignore in m)]
        if not kept:
            return ""
        detail = ": " + "; ".join(kept)
    return f"{type(error).__name__}{detail}"


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> Spec:
    """Parse the subset once per process (openapi-core takes about half a second)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    operations = [
        Operation(spec["operationId"], method, template, _compile(template))
        for template, item in document["paths"].items()
        for method, spec in item.items()
        if method in _METHODS
    ]
    # Literal segments beat parameters when two templates could match the same path.
    operations.sort(key=lambda op: -len(re.sub(r"\{\w+\}", "", op.template)))
    return Spec(document, OpenAPI.from_dict(document), tuple(operations))
