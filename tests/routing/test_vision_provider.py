"""Vision tiers (issue 25): the customer's shared screen as an image part, through the real openai and google-genai
SDKs against local servers speaking OpenAI's chat-completions and Gemini's generateContent wire formats."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from callwise.routing.providers.images import IMAGE_NOTE, MAX_IMAGE_BYTES, TurnImage, turn_image, use_turn_image
from callwise.routing.providers.vision import (
    GoogleVisionProvider,
    OpenAICompatibleVisionProvider,
    OpenAIVisionProvider,
)
from callwise.routing.types import Message
from tests.vendors.google import FakeGemini
from tests.vendors.openai import FakeOpenAI

SCREEN = Path(__file__).resolve().parents[2] / "examples" / "screens" / "e-4290-dialog.png"
MSGS = [Message("system", "You are a support agent."), Message("user", "Sources: ..."),
        Message("user", "What does this error mean?")]


def _image() -> TurnImage:
    from PIL import Image

    img = Image.open(SCREEN)
    return TurnImage(SCREEN.read_bytes(), img.width, img.height)


def _sent_png(part: dict[str, object]) -> bytes:
    url = str(part["image_url"]["url"])  # type: ignore[index]
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


async def test_the_turns_frame_goes_with_the_last_user_message(fake_openai: FakeOpenAI) -> None:
    p = OpenAIVisionProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url, detail="low")
    use_turn_image(_image())
    gen = await p.generate(MSGS, max_tokens=64)
    assert gen.text == fake_openai.text
    messages = fake_openai.chat_requests[-1].body["messages"]
    assert messages[0] == {"role": "system", "content": "You are a support agent."}
    assert messages[1]["content"] == "Sources: ..."  # earlier messages stay text
    text, image = messages[-1]["content"]
    assert text["type"] == "text" and text["text"].startswith(IMAGE_NOTE) and "this error" in text["text"]
    assert image["type"] == "image_url" and image["image_url"]["detail"] == "low"
    assert _sent_png(image) == SCREEN.read_bytes()


async def test_a_streamed_answer_sends_the_frame_too(fake_openai: FakeOpenAI) -> None:
    p = OpenAIVisionProvider("gpt-4o", api_key="test", base_url=fake_openai.base_url)
    use_turn_image(_image())
    deltas = [d async for d in p.stream(MSGS, max_tokens=64)]
    assert "".join(deltas) == fake_openai.text
    body = fake_openai.chat_requests[-1].body
    assert body["stream"] is True and _sent_png(body["messages"][-1]["content"][1]) == SCREEN.read_bytes()


async def test_a_turn_without_a_frame_sends_text_only(fake_openai: FakeOpenAI) -> None:
    p = OpenAIVisionProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)
    await p.generate(MSGS)
    assert fake_openai.chat_requests[-1].body["messages"][-1]["content"] == "What does this error mean?"
    use_turn_image(TurnImage(b"x" * (MAX_IMAGE_BYTES + 1), 10, 10))  # too big to send: text only
    await p.generate(MSGS)
    assert fake_openai.chat_requests[-1].body["messages"][-1]["content"] == "What does this error mean?"


async def test_one_calls_frame_never_reaches_another_calls_turn(fake_openai: FakeOpenAI) -> None:
    p = OpenAIVisionProvider("gpt-4o-mini", api_key="test", base_url=fake_openai.base_url)

    async def turn(with_frame: bool) -> object:
        if with_frame:
            use_turn_image(_image())
        await asyncio.sleep(0)
        await p.generate([Message("user", f"frame={with_frame}")])
        return turn_image()

    seen = await asyncio.gather(asyncio.create_task(turn(True)), asyncio.create_task(turn(False)))
    assert seen[0] is not None and seen[1] is None
    by_text = {}
    for req in fake_openai.chat_requests:
        content = req.body["messages"][-1]["content"]
        by_text["frame=True" if isinstance(content, list) else content] = content
    assert isinstance(by_text["frame=True"], list) and by_text["frame=False"] == "frame=False"


async def test_an_openai_compatible_vision_server_gets_alternating_turns_and_the_frame(fake_openai: FakeOpenAI) -> None:
    p = OpenAICompatibleVisionProvider("qwen2.5-vl-3b", base_url=fake_openai.base_url)
    use_turn_image(_image())
    await p.generate(MSGS, max_tokens=32)
    body = fake_openai.chat_requests[-1].body
    assert body["max_tokens"] == 32 and [m["role"] for m in body["messages"]] == ["system", "user"]
    text, image = body["messages"][-1]["content"]
    assert "Sources: ..." in text["text"] and "this error" in text["text"]
    assert _sent_png(image) == SCREEN.read_bytes()


async def test_gemini_gets_the_frame_as_inline_data() -> None:
    with FakeGemini("That is a rate limit.") as fake:
        p = GoogleVisionProvider("gemini-2.5-flash", api_key="test", base_url=fake.url)
        use_turn_image(_image())
        gen = await p.generate(MSGS, max_tokens=64)
        assert gen.text == "That is a rate limit."
        parts = fake.generate_requests[-1].body["contents"][-1]["parts"]
    assert parts[0]["text"] == IMAGE_NOTE and any("this error" in (q.get("text") or "") for q in parts)
    inline = parts[-1].get("inlineData") or parts[-1].get("inline_data")
    assert inline["mimeType" if "mimeType" in inline else "mime_type"] == "image/png"
    data = inline["data"]  # the SDK writes bytes as URL-safe base64
    assert base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)) == SCREEN.read_bytes()
