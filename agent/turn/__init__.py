"""The support turn as named stages over one ``TurnContext`` (read ``pipeline.support_stages``
top to bottom): record -> guard -> survey -> escalation rules on the words -> goodbye -> query
understanding -> retrieval -> answer -> rules on the answer, and persistence last, always.
The nightly run answers golden questions through the same stage classes
(``agent.wiring.evaluation``), without the recording and persistence.

Where other work plugs in:

* handoff (case desk, live transfer, tickets): implement ``escalate.Escalator`` and pass it as
  ``SupportDeps.escalator``; ``escalate()`` decides and words the handoff, ``recorded()`` runs once
  the escalation row exists (``persist.Persist``).
* reliability (per-turn deadline, holding line): ``pipeline.TurnStream.__anext__`` is where the
  reader waits for the next piece of text (a holding line after N ms of silence goes there);
  ``answer.Answer`` is the one stage that waits on a model.
* speakable text before TTS: ``SupportDeps.speakable`` (``str -> str``) is applied by
  ``TurnContext.say`` to every reply and streamed delta.
* calibrated confidence / escalation rules: ``agent.escalation.EscalationRules`` (``SupportDeps.rules``),
  called by ``escalate.EscalateOnWords`` and ``escalate.EscalateOnAnswer``.
* A/B configuration of a call: ``CallContext.overrides`` (top_k/chunk_count, rerank, temperature,
  prompt_version), read by ``retrieve.Retrieve`` and ``answer.Answer``.
"""

from agent.turn.call import ESCALATION_TOPIC, GREETING, SupportCall
from agent.turn.context import CallContext, TurnContext, TurnOutcome
from agent.turn.deps import SupportDeps
from agent.turn.pipeline import Stage, TurnPipeline, TurnStream, support_stages

__all__ = ["ESCALATION_TOPIC", "GREETING", "CallContext", "Stage", "SupportCall", "SupportDeps", "TurnContext",
           "TurnOutcome", "TurnPipeline", "TurnStream", "support_stages"]
