"""What ``agent/handoff_room.py`` gives a SIP call: a warm transfer desk where one can be made (an on-duty number,
an outbound trunk, LiveKit's server API), else only the cold transfer; and the side room's voice, offline or a
configured generative tier."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from livekit.agents import AgentSession
from livekit.plugins import openai

from callwise.agent.handoff_room import warm_desk
from callwise.agent.plugins.llm_transfer_desk import TransferDeskLLM
from callwise.agent.warm_transfer import WarmTransferDesk, desk_llm_for
from callwise.wiring.settings import Settings

LIVEKIT = {"LIVEKIT_URL": "http://127.0.0.1:7880", "LIVEKIT_API_KEY": "devkey",
           "LIVEKIT_API_SECRET": "devsecret-devsecret-devsecret-0123"}


@pytest.fixture
def lk_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in LIVEKIT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LIVEKIT_SIP_OUTBOUND_TRUNK", raising=False)
    for key in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _call(language: str = "en") -> SimpleNamespace:
    return SimpleNamespace(ctx=SimpleNamespace(language=language))


def test_no_outbound_trunk_means_no_warm_desk_and_the_cold_transfer(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, handoff_transfer_to="tel:+15550001111")
    assert warm_desk(_call(), AgentSession(), settings) is None


def test_no_on_duty_number_means_no_warm_desk(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lk_env.setenv("LIVEKIT_SIP_OUTBOUND_TRUNK", "ST_duty")
    assert warm_desk(_call(), AgentSession(), Settings(_env_file=None, data_dir=tmp_path)) is None


def test_a_warm_desk_dials_the_on_duty_number_over_the_outbound_trunk(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lk_env.setenv("LIVEKIT_SIP_OUTBOUND_TRUNK", "ST_duty")
    settings = Settings(_env_file=None, data_dir=tmp_path, handoff_transfer_to="tel:+15550001111",
                        handoff_ringing_timeout_s=25)
    desk = warm_desk(_call("es"), AgentSession(), settings)
    assert isinstance(desk, WarmTransferDesk)
    cfg = desk.config
    assert (cfg.sip_call_to, cfg.sip_trunk_id, cfg.ringing_timeout_s, cfg.language) == ("+15550001111", "ST_duty",
                                                                                         25.0, "es")
    assert cfg.hold_audio is None, "the framework's hold music plays in the caller's room"
    voice = desk.desk_llm("Hello, a transfer.")
    assert isinstance(voice, TransferDeskLLM) and voice.language == "es"


def test_a_sip_uri_is_dialled_as_it_is(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lk_env.setenv("LIVEKIT_SIP_OUTBOUND_TRUNK", "ST_duty")
    settings = Settings(_env_file=None, data_dir=tmp_path, handoff_transfer_to="sip:duty@pbx.example.com")
    desk = warm_desk(_call(), AgentSession(), settings)
    assert desk is not None and desk.config.sip_call_to == "sip:duty@pbx.example.com"


def test_a_configured_openai_compatible_tier_is_the_side_rooms_voice(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("tier1: {provider: extractive, model: extractive-v1}\n"
                     "tier2: {provider: extractive, model: extractive-v1}\n"
                     "tier3: {provider: openai_compatible, model: qwen2.5-7b-instruct, "
                     "base_url: 'http://127.0.0.1:9/v1'}\n")
    settings = Settings(_env_file=None, data_dir=tmp_path, tiers_file=tiers)
    voice = desk_llm_for(settings)("Hello, a transfer.")
    assert isinstance(voice, openai.LLM) and voice.model == "qwen2.5-7b-instruct"


def test_without_a_generative_tier_the_side_room_speaks_offline(lk_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    voice = desk_llm_for(Settings(_env_file=None, data_dir=tmp_path))("Hello, a transfer.")
    assert isinstance(voice, TransferDeskLLM) and voice.briefing == "Hello, a transfer."
