"""The README's sample call (examples/calls/refund.wav), its third question on the voice path: answered from the KB,
not refused as a question the help centre does not cover (the lead's report of 19:40, issue 21 round 2)."""

from __future__ import annotations

import json
from pathlib import Path

CALL = Path(__file__).resolve().parents[3] / "examples" / "calls" / "manifest.json"


async def test_the_sample_calls_refund_timing_question_is_answered_not_refused(support_deps, kb_org) -> None:
    from callwise.calls import SupportCall
    from callwise.routing.answerability import REPLIES

    said = [u["text"] for c in json.loads(CALL.read_text())["calls"] if c["file"] == "refund.wav" for u in c["utterances"]]
    assert said[2].startswith("Okay, and how long does it take for the money")
    call = SupportCall(support_deps, organization_id=kb_org, session_id=None, modality="voice", persist=False)
    await call.run_turn(said[0])  # the statement: acknowledged, kept as a fact
    out = await call.run_turn(said[2])
    assert out.kind == "answer" and REPLIES["no_source"] not in out.answer and not out.offered_colleague
    assert out.sources and out.sources[0]["document"].endswith("billing/refunds.md")
    assert "business days" in out.answer
