"""The Jinja environment for markdown templates (no autoescape: filters escape what is needed)."""

from __future__ import annotations

import functools

import jinja2

from bot.render.text import cell, code, code_cell, neutralise, neutralise_prose


@functools.cache
def environment() -> jinja2.Environment:
    """Built on first use, not at import time; StrictUndefined turns typos into errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.render", "templates"),
        autoescape=False,  # noqa: S701 -- markdown, not HTML; user text goes through filters
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        cell=cell, code=code, code_cell=code_cell, neutralise=neutralise, prose=neutralise_prose
    )
    return env


def render(template: str, **values: object) -> str:
    """Render `templates/<template>` with `values`."""
    return environment().get_template(template).render(**values)
