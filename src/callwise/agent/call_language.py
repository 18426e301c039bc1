"""The call's language in the live worker: asked for before the call, settled on the first utterance, then
given to the call, the STT and the TTS.

Where a call says its language, first that wins (``callwise.calls.languages.choose`` then puts the call's own
request over the organization's setting, and both over detection):

1. the SIP header ``X-Callwise-Language: es`` on the inbound INVITE. LiveKit SIP copies a trunk's ``X-``
   headers into the caller's participant attributes as ``sip.h.x-callwise-language`` when the inbound trunk
   has ``include_headers: SIP_X_HEADERS``; a trunk's ``headers_to_attributes`` may map it to
   ``callwise.language`` instead, which is read next;
2. the participant attribute ``callwise.language``;
3. ``{"language": "es"}`` in the participant's metadata, then the job's (``lk dispatch create --metadata``),
   then the room's.

``auto`` anywhere asks for detection on the first utterance (multilingual Whisper locally; Deepgram's
``multi``). Nothing asked and no organization language: the English default, with the process's own STT.

After the first utterance :class:`LiveLanguage` puts the settled language into the call (fixed lines,
escalation phrases, survey), switches the TTS voice (espeak-ng's voice per language; OpenAI's
``instructions``; Deepgram's Aura-2 voice where one is known) and tells the STT (Deepgram's ``language``; the
multilingual Whisper decodes later utterances in it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts

from callwise.calls import languages
from callwise.calls.languages import LanguageChoice, LanguageError
from callwise.wiring.settings import Settings

log = logging.getLogger("callwise.language")

LANGUAGE_HEADER = "X-Callwise-Language"
SIP_ATTRIBUTE = "sip.h." + LANGUAGE_HEADER.lower()
ATTRIBUTE = "callwise.language"
METADATA_KEY = "language"
AUTO = "auto"
#: Deepgram Aura-2 voices by language (developers.deepgram.com/docs/tts-models); a language without one keeps
#: the configured voice, with a log line
DEEPGRAM_TTS_MODELS: dict[str, str] = {"en": "aura-2-thalia-en", "es": "aura-2-celeste-es"}


@dataclass(frozen=True)
class LanguageRequest:
    """What the call asked for before anyone spoke: a language code (``None``: detect), and where it was set."""

    code: str | None
    source: str

    @property
    def auto(self) -> bool:
        return self.code is None


def _from_metadata(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get(METADATA_KEY) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def requested_language(*, attributes: Mapping[str, str] | None = None, participant_metadata: str | None = None,
                       job_metadata: str | None = None, room_metadata: str | None = None) -> LanguageRequest | None:
    """The language the call asked for (module docstring: the SIP header, the attribute, then metadata), or
    None. A value that is not a language code is logged and skipped; an unserved code is kept (the call then
    hears the English notice and gets a case, ``callwise.calls.stages.language.CallLanguage``)."""
    attrs = {k.lower(): v for k, v in (attributes or {}).items()}
    candidates = (("sip_header", attrs.get(SIP_ATTRIBUTE)), ("attribute", attrs.get(ATTRIBUTE)),
                  ("participant_metadata", _from_metadata(participant_metadata)),
                  ("job_metadata", _from_metadata(job_metadata)), ("room_metadata", _from_metadata(room_metadata)))
    for source, value in candidates:
        if value is None or not value.strip():
            continue
        if value.strip().lower() == AUTO:
            return LanguageRequest(None, source)
        try:
            code = languages.normalize(value)
        except LanguageError as exc:
            log.warning("ignored the call's language from %s: %s", source, exc)
            continue
        return LanguageRequest(code, source)
    return None


def initial_choice(request: LanguageRequest | None, org_language: str | None) -> LanguageChoice | None:
    """The call's language before anyone spoke, when the call or its organization fixes one (None: detect, or
    the English default when nothing asks for detection)."""
    org = None if org_language in (None, "", AUTO) else org_language
    call = request.code if request is not None else None
    if call is None and org is None:
        return None
    try:
        return languages.choose(call=call, org=org)
    except LanguageError:  # a bad organization setting: the call's own request, else detection
        log.warning("the organization's language %r is not a language code; ignored", org_language)
        return languages.choose(call=call) if call else None


def wants_detection(request: LanguageRequest | None, org_language: str | None) -> bool:
    """The call asked for ``auto``, or nothing was asked and the organization says ``auto``."""
    if request is not None:
        return request.auto
    return org_language == AUTO


def stt_for_call(settings: Settings, base: lk_stt.STT, request: LanguageRequest | None,
                 org_language: str | None) -> lk_stt.STT:
    """The STT this call needs: the process's own (``base``, prewarmed) for an English call; Deepgram told the
    language (``multi`` to detect); else the multilingual Whisper with the call's and the org's languages (its
    model is loaded once per process, ``stt_whisper.load_whisper``, so a call's instance is cheap)."""
    choice = initial_choice(request, org_language)
    detect = wants_detection(request, org_language)
    if not detect and (choice is None or choice.code == languages.DEFAULT):  # English, or unserved: notice + case
        return base
    if settings.deepgram_api_key:
        from callwise.agent.voice import build_stt

        stt = build_stt(settings, choice.code if choice is not None else languages.DEFAULT)
        if choice is None:
            stt.update_options(language="multi")  # type: ignore[attr-defined]  # nova-3's code-switching mode
        return stt
    from callwise.agent.plugins.stt_multilingual import build_multilingual_stt

    return build_multilingual_stt(cache_dir=settings.data_dir / "models",
                                  call_language=request.code if request is not None else None,
                                  org_language=None if org_language in (None, "", AUTO) else org_language)


def set_tts_language(tts: lk_tts.TTS | None, language: str) -> bool:
    """Speak ``language`` from the next sentence on; False when this TTS cannot be told (logged)."""
    if tts is None:
        return False
    from callwise.agent.plugins.tts_espeak import EspeakTTS

    lang = languages.language_of(language)
    if isinstance(tts, EspeakTTS):
        tts.update_options(voice=languages.ESPEAK_VOICES[lang])
        return True
    provider = getattr(tts, "provider", "")
    if "openai" in provider.lower() or type(tts).__module__.startswith("livekit.plugins.openai"):
        # gpt-4o-mini-tts speaks the text's language; the instruction keeps its accent on it
        tts.update_options(instructions=f"Speak {languages.NAMES[lang]}, as a friendly support agent.")  # type: ignore[attr-defined]
        return True
    if type(tts).__module__.startswith("livekit.plugins.deepgram"):
        model = DEEPGRAM_TTS_MODELS.get(lang)
        if model is None:
            log.warning("no Deepgram voice configured for %s; the call keeps its voice", languages.NAMES[lang])
            return False
        tts.update_options(model=model)  # type: ignore[attr-defined]
        return True
    log.warning("TTS %s cannot be told the call's language (%s)", type(tts).__name__, lang)
    return False


def set_stt_language(stt: lk_stt.STT, choice: LanguageChoice) -> bool:
    """Decode later utterances in the call's language; False when this STT has nothing to be told."""
    from callwise.agent.plugins.stt_multilingual import MultilingualWhisperSTT

    if isinstance(stt, MultilingualWhisperSTT):
        if stt.choice is None or stt.choice.code != choice.code:
            stt.choice = choice
        return True
    if type(stt).__module__.startswith("livekit.plugins.deepgram"):
        stt.update_options(language=languages.DEEPGRAM_LANGUAGES[choice.code])  # type: ignore[attr-defined]
        return True
    return False


class LiveLanguage:
    """One call's language in a room: ``apply`` puts a settled language into the call, the STT and the TTS;
    ``watch`` passes the STT's events through and settles the language on the first final transcript."""

    def __init__(self, call: Any, *, stt: lk_stt.STT, tts: lk_tts.TTS | None, request: LanguageRequest | None = None,
                 org_language: str | None = None) -> None:
        self.call = call  # a callwise.calls.SupportCall
        self.stt, self.tts = stt, tts
        self.request, self.org_language = request, org_language
        self.settled: LanguageChoice | None = None
        first = initial_choice(request, org_language)
        if first is not None:
            self.apply(first)

    @property
    def language(self) -> str:
        return self.settled.code if self.settled is not None else languages.DEFAULT

    def greeting(self) -> str:
        """The greeting in the call's language, as far as it is known before anyone spoke."""
        return languages.line("greeting", self.language)

    def apply(self, choice: LanguageChoice) -> None:
        ctx = self.call.ctx
        ctx.language, ctx.language_choice = choice.code, choice
        self.settled = choice
        voice = set_tts_language(self.tts, choice.code)
        told = set_stt_language(self.stt, choice)
        log.info("call language %s (%s; requested %s): tts switched=%s, stt told=%s", choice.code, choice.source,
                 choice.requested, voice, told)

    def on_transcript(self, ev: Any) -> None:
        """Settle the language from the first final transcript: the multilingual Whisper's own choice, else the
        language the STT reported (Deepgram's detection)."""
        if self.settled is not None or not isinstance(ev, lk_stt.SpeechEvent):
            return
        if ev.type != lk_stt.SpeechEventType.FINAL_TRANSCRIPT or not ev.alternatives:
            return
        choice = getattr(self.stt, "choice", None)
        if choice is None:
            heard = str(ev.alternatives[0].language or "")
            if not heard or not ev.alternatives[0].text.strip():
                return
            try:
                choice = languages.choose(detected=heard)
            except LanguageError:  # not a language code ("multi"): wait for a transcript that names one
                log.info("the STT reported %r as the language; not settled yet", heard)
                return
        self.apply(choice)

    async def watch(self, events: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """``Agent.stt_node``'s events, unchanged, with the language settled on the way."""
        async for ev in events:
            self.on_transcript(ev)
            yield ev
