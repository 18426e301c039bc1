"""The support turn as named stages over one ``TurnContext`` (read ``pipeline.support_stages``
top to bottom): record -> guard -> survey -> escalation rules on the words -> goodbye -> query
understanding -> retrieval -> the caller's CRM record -> answer -> rules on the answer, and
persistence last, always. The nightly run answers golden questions through the same stage classes
(``pipeline.evaluation_stages``, wired in ``callwise.wiring.evaluation``), without the call-only stages
and without storing anything.

Where other work plugs in:

* handoff (case desk, live transfer, tickets): an ``escalate.Escalator`` given as
  ``SupportDeps.escalator`` (``callwise.wiring.agent`` passes the handoff service); ``escalate()``
  decides and words the handoff, ``recorded()`` runs once the escalation row exists (``persist``).
* reliability (per-turn deadline, holding line): ``answer.Answer`` hands the caller's end of speech
  (``eos_at``) to the router, whose live deadline says the holding line; ``pipeline.TurnStream`` is
  where the framework reads the reply (cancelling it is a barge-in; what was delivered is stored).
* speakable text before TTS: ``answer.Answer`` runs streamed voice/video answers through
  ``callwise.routing.speakable.SpeakableStream``; ``SupportDeps.speakable`` (``str -> str``) is applied by
  ``TurnContext.say`` to everything said, when set.
* calibrated confidence / escalation rules: ``callwise.handoff.escalation.EscalationRules`` (``SupportDeps.rules``),
  called by ``escalate.EscalateOnWords`` and ``escalate.EscalateOnAnswer``; the router's confidence.
* the caller (CRM): ``caller.KnowCaller`` fills the customer block from ``CallContext.caller``.
* A/B configuration of a call: ``CallContext.overrides`` (top_k/chunk_count, rerank, temperature,
  prompt_version), set by ``SupportCall.start`` from the caller's variants, read by
  ``retrieve.Retrieve`` and ``answer.Answer``.
"""

from callwise.calls.call import ESCALATION_TOPIC, GREETING, SupportCall
from callwise.calls.context import CallContext, TurnContext, TurnOutcome
from callwise.calls.deps import SupportDeps
from callwise.calls.pipeline import Stage, TurnPipeline, TurnStream, support_stages

__all__ = ["ESCALATION_TOPIC", "GREETING", "CallContext", "Stage", "SupportCall", "SupportDeps", "TurnContext",
           "TurnOutcome", "TurnPipeline", "TurnStream", "support_stages"]
