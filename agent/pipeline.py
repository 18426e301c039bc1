"""Compatibility names: the support turn now lives in ``agent.turn`` (named stages)."""

from agent.turn import ESCALATION_TOPIC, GREETING, SupportCall, SupportDeps, TurnOutcome, TurnStream
from agent.turn.survey import RETRY_RATING, is_goodbye

__all__ = ["ESCALATION_TOPIC", "GREETING", "RETRY_RATING", "SupportCall", "SupportDeps", "TurnOutcome",
           "TurnStream", "is_goodbye"]
