import tracemalloc

import pytest

from callwise.knowledge.chunking import Chunker, ChunkingConfig, split_text
from callwise.knowledge.loaders import LoadError, discover, open_document
from tests.knowledge.conftest import CORPUS, write_corpus

PARAGRAPH = ("Orbitly syncs your calendar, contacts and call notes across devices. " * 6).strip()


def test_recursive_split_respects_limits_and_overlap(embedder):
    text = "\n\n".join(f"Section {i}. " + PARAGRAPH for i in range(20))
    pieces = split_text(text, 256, 51, embedder.count_tokens_batch)
    assert len(pieces) > 3
    for piece, n in pieces:
        assert embedder.count_tokens(piece) <= 256
        assert abs(embedder.count_tokens(piece) - n) <= 2
    # consecutive pieces overlap, by at most 20% of the limit
    words = [p.split() for p, _ in pieces]
    for a, b in zip(words, words[1:], strict=False):
        shared = next((k for k in range(min(len(a), len(b)), 0, -1) if a[-k:] == b[:k]), 0)
        assert embedder.count_tokens(" ".join(b[:shared])) <= 0.2 * 256


def test_split_without_separators_cuts_by_characters(embedder):
    blob = "x" * 5000
    pieces = split_text(blob, 100, 0, embedder.count_tokens_batch)
    assert "".join(p for p, _ in pieces) == blob
    assert all(embedder.count_tokens(p) <= 100 for p, _ in pieces)


def test_parents_and_children(embedder, tmp_path):
    md = "# Guide\n\n" + "\n\n".join(f"## Part {i}\n\n" + PARAGRAPH * 3 for i in range(8))
    (tmp_path / "guide.md").write_text(md)
    doc = open_document(tmp_path / "guide.md", "guide.md")
    cfg = ChunkingConfig()
    assert cfg.child_overlap == 51  # 60 capped at 20% of 256
    parents = list(Chunker(embedder.count_tokens_batch, cfg).chunk(doc.sections()))
    assert doc.title == "Guide"
    assert len(parents) >= 2
    for p in parents:
        assert p.token_count <= cfg.parent_tokens + 16  # headings added back to the parent text
        assert p.children and all(c.token_count <= cfg.child_tokens for c in p.children)
        assert all(c.title_path[0] == "Guide" and c.title_path[1].startswith("Part") for c in p.children)
    assert sum(p.token_count for p in parents[:-1]) / (len(parents) - 1) >= 512


def test_loaders_markdown_html_text(tmp_path):
    root = write_corpus(tmp_path / "kb")
    found = dict((src, p) for p, src in discover(root))
    assert set(found) == {f"{root}/{rel}" for rel in CORPUS}
    md = open_document(found[f"{root}/billing/refunds.md"], "x")
    sections = list(md.sections())
    assert md.title == "Refund policy"  # front matter
    assert sections[-1].title_path == ("Refund policy", "How to request a refund")
    html = open_document(found[f"{root}/sso/okta.html"], "y")
    hs = list(html.sections())
    assert html.title == "Set up SSO with Okta"
    assert any(s.title_path[-1] == "Steps" and "metadata XML" in s.text for s in hs)
    assert all("<li>" not in s.text for s in hs)
    txt = open_document(found[f"{root}/plans/sku.txt"], "z")
    assert "SKU-88A" in list(txt.sections())[0].text and txt.title == "sku"


def _tiny_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_pdf_pages(tmp_path):
    p = tmp_path / "manual.pdf"
    p.write_bytes(_tiny_pdf("Press the reset button for ten seconds"))
    doc = open_document(p, "manual.pdf")
    sections = list(doc.sections())
    assert "reset button" in sections[0].text and sections[0].title_path[-1] == "Page 1"


@pytest.mark.parametrize("name,content,reason", [
    ("empty.md", b"", "empty"),
    ("blank.txt", b"  \n\n ", "empty"),
    ("garbage.txt", bytes(range(256)) * 40, "binary"),
    ("latin.md", "caf\xe9 ".encode("latin-1") * 50, "UTF-8"),
    ("image.png", b"\x89PNG....", "unsupported"),
    ("fake.pdf", b"hello, not a pdf", "not a PDF"),
])
def test_bad_files_have_reasons(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        open_document(p, name)


def test_a_50mb_document_is_chunked_without_loading_it_whole(embedder, tmp_path):
    big = tmp_path / "big.txt"
    para = (PARAGRAPH + "\n\n").encode()
    with big.open("wb") as fh:
        for _ in range(50 * 1024 * 1024 // len(para) + 1):
            fh.write(para)
    assert big.stat().st_size >= 50 * 1024 * 1024
    tracemalloc.start()
    try:
        doc = open_document(big, "big.txt")  # hashes the whole file, streamed
        chunker = Chunker(embedder.count_tokens_batch)
        parents = chunker.chunk(doc.sections())
        first = [next(parents) for _ in range(30)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(p.children for p in first)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_man_page_lead_is_its_name_line_not_its_synopsis(tmp_path):
    from callwise.knowledge.loaders import lead_sentence

    md = ("---\ntitle: git-blame(1)\n---\n# git-blame(1) Manual Page\n\n## NAME\n\ngit-blame -\n"
          "Show what revision and author last modified each line of a file\n\n## SYNOPSIS\n\n```\n"
          "git blame [-c] [-b] [-l] [--root] <file>\n```\n\n## DESCRIPTION\n\nAnnotates each line.\n")
    (tmp_path / "git-blame.md").write_text(md)
    doc = open_document(tmp_path / "git-blame.md", "git-blame.md")
    list(doc.sections())
    assert doc.summary == "git-blame - Show what revision and author last modified each line of a file"
    assert lead_sentence("git blame [-c] [-b] [-l] [--root] <file>") == ""  # a synopsis is not prose
    assert lead_sentence("| a | b |") == "" and lead_sentence("- a list item here now") == ""
    assert lead_sentence("Too short.") == ""
    assert lead_sentence("The **sqlite3** module [docs](x.html) wraps SQLite. It is small.") == \
        "The sqlite3 module docs wraps SQLite."


def test_the_lead_heads_other_chunks_index_text_once():
    from callwise.knowledge.chunking import index_text

    lead = "git-blame - Show what revision and author last modified each line of a file"
    assert index_text("-L <range> limits", ("git-blame(1)", "OPTIONS"), lead) == \
        f"git-blame(1) > OPTIONS\n{lead}\n-L <range> limits"
    assert index_text(f"{lead}.", ("git-blame(1)", "NAME"), lead).count("Show what") == 1
