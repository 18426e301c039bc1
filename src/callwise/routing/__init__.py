"""Tiered answering: complexity analysis, providers, the cascading router, prompts and cost accounting.

Imports nothing of ours; ``callwise.wiring.routing`` builds a router from settings."""

from callwise.routing.costs import CostEvent, CostSink, MemoryCostSink, NullCostSink, PostgresCostSink
from callwise.routing.router import AnswerStream, CascadingRouter, Tier
from callwise.routing.types import CustomerContext, Generation, Grounding, Message, RoutedAnswer, SourceDoc

__all__ = [
    "AnswerStream", "CascadingRouter", "CostEvent", "CostSink", "CustomerContext", "Generation", "Grounding",
    "MemoryCostSink", "Message", "NullCostSink", "PostgresCostSink", "RoutedAnswer", "SourceDoc", "Tier",
]
