"""Settings from hostile environment values: a valid Settings or a ValidationError/SettingsError
naming the variable (what `callwise` turns into one line), never another exception."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_settings import SettingsError

from callwise.wiring.settings import Settings, env_name

FIELDS = sorted(Settings.model_fields)
VALUES = st.one_of(
    st.text(max_size=60).filter(lambda s: "\x00" not in s),  # the OS refuses NUL in the environment
    st.sampled_from(["", "[", "[]", "{", '{"a": "x"}', "[1,2", "1e999", "-1", "nan", "inf", "true", "yes", "25:99",
                     "9" * 400, "tier4", "tier1,tier9", '["tier1"]', "0", "0.0", "-0", "\ud83d\ude00", " "]),
)


@contextmanager
def env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@settings(max_examples=120, deadline=timedelta(milliseconds=1000), derandomize=True)
@given(st.sampled_from(FIELDS), VALUES)
def test_any_environment_value_is_accepted_or_named(field: str, value: str) -> None:
    var = env_name(field)
    try:
        with env(var, value):
            Settings(_env_file=None)
    except ValidationError as exc:
        assert exc.errors() and str(exc)
    except SettingsError as exc:
        assert str(exc)
    except UnicodeEncodeError:
        pass  # a lone surrogate cannot even be put into the environment
