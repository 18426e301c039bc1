"""SOQL literals: every special character escaped, injection attempts stay inside the literal."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwise.integrations.crm.soql import escape, quote, quote_like, soql


@pytest.mark.parametrize(("raw", "escaped"), [
    ("O'Brien", "O\\'Brien"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("line\nbreak\ttab\rret", "line\\nbreak\\ttab\\rret"),
    ("bell\x07", "bell\\u0007"),
    ("Zoë Ñandú 東京", "Zoë Ñandú 東京"),
])
def test_special_characters_are_escaped(raw, escaped):
    assert escape(raw) == escaped


def test_an_injection_attempt_stays_one_literal():
    q = soql("SELECT Id FROM Contact WHERE Name = {}", "x' OR Name != '")
    assert q == "SELECT Id FROM Contact WHERE Name = 'x\\' OR Name != \\''"
    # exactly one unescaped literal: the closing quote is the last character
    assert re.fullmatch(r"SELECT Id FROM Contact WHERE Name = '(?:[^'\\]|\\.)*'", q)


def test_like_wildcards_match_literally():
    assert quote_like("50%_off") == "'50\\%\\_off'"
    assert quote("50%_off") == "'50%_off'"


def test_template_needs_one_value_per_placeholder():
    with pytest.raises(ValueError, match="placeholder"):
        soql("SELECT Id FROM Contact WHERE Email = {} AND Phone = {}", "a@b.co")


@settings(max_examples=200, deadline=200)
@given(st.text())
def test_any_text_is_one_well_formed_literal(value):
    literal = quote(value)
    assert re.fullmatch(r"'(?:[^'\\\x00-\x1f]|\\[nrtbf\"'\\]|\\u[0-9a-f]{4})*'", literal, re.S)
