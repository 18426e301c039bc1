"""Tiered answering: complexity analysis, providers, the cascading router, prompts and cost accounting.

Imports nothing of ours; ``agent.wiring.routing`` builds a router from settings."""

from routing.costs import CostEvent, CostSink, MemoryCostSink, NullCostSink, PostgresCostSink
from routing.router import AnswerStream, CascadingRouter, Tier
from routing.types import CustomerContext, Generation, Grounding, Message, RoutedAnswer, SourceDoc

__all__ = [
    "AnswerStream", "CascadingRouter", "CostEvent", "CostSink", "CustomerContext", "Generation", "Grounding",
    "MemoryCostSink", "Message", "NullCostSink", "PostgresCostSink", "RoutedAnswer", "SourceDoc", "Tier",
]
