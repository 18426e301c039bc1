"""SOQL string literals, escaped in one place.

Salesforce's SOQL reference: inside a quoted literal ``\\n \\r \\t \\b \\f \\" \\' \\\\`` are escapes and any
other backslash is an error; in a LIKE pattern ``\\_`` and ``\\%`` match the literal characters. Every
value that reaches a SOQL string goes through :func:`quote` (or :func:`quote_like`), never an f-string.
"""

from __future__ import annotations

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def escape(value: str) -> str:
    """The body of a SOQL string literal for ``value`` (no quotes around it)."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def quote(value: str) -> str:
    """A complete SOQL string literal: ``'...'`` with every special character escaped."""
    return f"'{escape(value)}'"


def quote_like(value: str) -> str:
    """A LIKE pattern matching ``value`` literally (``%`` and ``_`` escaped), as a quoted literal.

    Wrap it yourself for contains/starts-with: ``quote_like(v)[:-1] + "%'"``.
    """
    return "'" + escape(value).replace("%", "\\%").replace("_", "\\_") + "'"


def soql(template: str, *values: str) -> str:
    """``template`` with each ``{}`` replaced by a quoted literal of the next value."""
    parts = template.split("{}")
    if len(parts) - 1 != len(values):
        raise ValueError(f"SOQL template has {len(parts) - 1} placeholder(s) for {len(values)} value(s)")
    out = [parts[0]]
    for value, tail in zip(values, parts[1:], strict=True):
        out.append(quote(value))
        out.append(tail)
    return "".join(out)
