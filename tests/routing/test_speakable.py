"""The normaliser between the router and TTS: Markdown, code, lists and URLs become sentences a
caller can follow, on a whole answer and on a stream of deltas alike."""

from __future__ import annotations

import random

import pytest

from callwise.routing.router import DISCLAIMER
from callwise.routing.speakable import (
    SpeakableStream,
    code_in_words,
    needs_speakable,
    speakable,
    speakable_deltas,
    trim_to_sentence,
)
from callwise.routing.text import CODE_POINTER, speakable_problems

# The shape of the answer in issue 14 (Markdown, two fenced SQL blocks, a list, a URL, cut off by the cap).
MARKDOWN_ANSWER = """To change a password, use the **ALTER USER** statement [2]. Here is how:

1. Connect as an administrator.
2. Run `ALTER USER alice PASSWORD 'new'`.
3. Check https://www.postgresql.org/docs/current/sql-alteruser.html for the options.

```sql
ALTER USER alice WITH PASSWORD 'secret' VALID UNTIL '2026-01-01';
SELECT usename FROM pg_user;
```

```sh
passwd alice
```

### Notes
- You need the *old* password.
- See [the manual](https://example.com/man) if stuck, such as"""


def test_markdown_answer_becomes_plain_sentences() -> None:
    out = speakable(MARKDOWN_ANSWER)
    assert not speakable_problems(out), (speakable_problems(out), out)
    for gone in ("**", "`", "```", "http", "[2]", "###", "SELECT usename", "1."):
        assert gone not in out
    assert "ALTER USER statement" in out and "Connect as an administrator." in out
    assert "passwd alice" not in out and "The command is" not in out  # no code block is read out, short or long
    assert "See the manual if stuck" not in out  # the cut-off last sentence is not said
    assert out.endswith("You need the old password. " + CODE_POINTER)  # said once, where the command is
    assert out.count(CODE_POINTER) == 1
    assert not speakable_problems(out, voice=True), speakable_problems(out, voice=True)


@pytest.mark.parametrize("seed", range(5))
def test_stream_of_deltas_says_the_same_as_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    s = SpeakableStream()
    pieces, i = [], 0
    while i < len(MARKDOWN_ANSWER):
        n = rng.randint(1, 9)
        pieces.append(s.feed(MARKDOWN_ANSWER[i:i + n]))
        i += n
    pieces.append(s.flush())
    released = [p for p in pieces if p]
    assert " ".join("".join(pieces).split()) == speakable(MARKDOWN_ANSWER)
    assert len(released) >= 5  # released sentence by sentence, not all at the end
    assert all(not speakable_problems(p) for p in released)


async def test_async_wrapper_and_the_routers_disclaimer_ends_the_answer() -> None:
    async def deltas():  # type: ignore[no-untyped-def]
        for d in ["Run the `passwd` ", "command. It asks for the old one, such as", " " + DISCLAIMER]:
            yield d

    s = SpeakableStream(boundaries=(DISCLAIMER,))
    out = "".join([s.feed(d) async for d in deltas()]) + s.flush()
    assert " ".join(out.split()) == f"Run the passwd command. {DISCLAIMER}"
    assert s.dropped == ["It asks for the old one, such as"]
    plain = [d async for d in speakable_deltas(deltas())]
    assert "".join(plain).startswith("Run the passwd command.")


def test_short_code_in_words_and_sentences_kept_whole() -> None:
    assert code_in_words("git config --global user.name") == "git config dash dash global user dot name"
    assert code_in_words("ls -la ~/.ssh") == "ls dash la tilde slash dot ssh"
    assert speakable("Yes") == "Yes."
    assert speakable("Plain words stay as they are. Version 2.5 too.") == "Plain words stay as they are. Version 2.5 too."
    assert trim_to_sentence("One. Two such as") == "One." and trim_to_sentence("Only a fragment") == "Only a fragment"


def test_text_channels_keep_markdown_and_spoken_ones_do_not() -> None:
    assert needs_speakable("voice") and needs_speakable("video")
    assert needs_speakable("screen_share")  # the agent talks the caller through their screen
    assert not needs_speakable("text")


@pytest.mark.parametrize(("text", "problem"), [
    ("To change it: ALTER USER bob WITH PASSWORD 'secret';", "code"),
    ("Run git config --global credential.helper store.", "code"),
    ("Then type $ make install in the folder.", "code"),
    ("Say git config dash dash global to set it.", "code"),
    ("Edit /etc/apache2/apache2.conf and reload.", "path"),
    ("Pass -v and --quiet together.", "option list"),
    ("Call sqlite3_open() and then sqlite3_close() when done.", "identifiers"),
    ("To raise the cache time, run:", "caption without its example"),
    ("The following example shows a password that expires at the end of the year:", "caption without its example"),
])
def test_voice_problems_name_what_a_caller_cannot_follow(text: str, problem: str) -> None:
    assert problem in speakable_problems(text, voice=True)
    assert problem not in speakable_problems(text)  # text channels keep their commands


@pytest.mark.parametrize("text", [
    "Set the credential helper to store in your global Git configuration.",
    "Use the htpasswd utility to create the password file.",
    "The .htaccess file is read on every request, so a change takes effect at once.",
    "Note: this applies to Windows only.",
    "Python 3.11 added it, e.g. for the version 2.4.1 server.",
    "Select a row from the list, then update the table.",
    # a semicolon in prose is not SQL (this sentence, the answer, was dropped for "code" and the caller heard
    # a neighbouring sentence and a pointer to a command that does not exist)
    "Google Workspace does not provide SCIM for custom apps; use just-in-time provisioning there.",
])
def test_voice_allows_plain_instructions_and_one_short_name(text: str) -> None:
    assert speakable_problems(text, voice=True) == []


def test_the_stream_keeps_the_code_it_did_not_read_out() -> None:
    from callwise.routing.speakable import SpeakableStream

    s = SpeakableStream()
    said = s.feed("Run the rotate command with your workspace.\n```\norbitly keys rotate --workspace acme\n```\n")
    said += s.feed("Or use `orbitly keys list --all` first, then")
    said += s.flush()
    assert "orbitly" not in said and s.code_dropped
    assert s.code == ["orbitly keys rotate --workspace acme", "orbitly keys list --all"]
    assert "then" not in " ".join(s.code)  # a cut-off tail is not code
