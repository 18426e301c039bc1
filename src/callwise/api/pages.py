"""The Jinja2 environment every HTML page renders through (``templates/``, autoescaping on): the dashboard,
the case desk and the survey page. Text from the database is escaped by the template, never by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

TEMPLATES = Path(__file__).resolve().parent / "templates"

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _num(v: float | None, nd: int = 0) -> str:
    return "—" if v is None else f"{v:,.{nd}f}"


def _usd(v: float | None) -> str:
    if v is None:
        return "—"
    return f"${v:,.4f}" if v < 1 else f"${v:,.2f}"


_env.filters.update(pct=_pct, num=_num, usd=_usd)


def render(name: str, **context: Any) -> str:
    context.setdefault("now", datetime.now(UTC))
    return _env.get_template(name).render(**context)


def page(name: str, *, status: int = 200, **context: Any) -> web.Response:
    """``templates/name`` rendered as an HTML response."""
    return web.Response(text=render(name, **context), status=status, content_type="text/html", charset="utf-8")
