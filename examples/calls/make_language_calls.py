"""Generate the sample calls in other languages and the shared-screen call (issue 25) with espeak-ng.

    python examples/calls/make_language_calls.py

Same recipe as ``make_calls.py`` (its ``speak``: espeak-ng at 150 words a minute, 16 kHz mono,
utterances 1 s apart), with the language's espeak-ng voice (``callwise.calls.languages.ESPEAK_VOICES``).
``languages.json`` next to this file records each call's utterances, their times and language.

* ``es-export-data.wav``: a Spanish caller asks two questions the English sample KB answers, says
  goodbye and rates the call ("excelente"). The sentences are ones espeak-ng's Spanish voice says
  clearly enough for Whisper base ("contraseña" came back as "compasella", "cinco de cinco" as "sin cópese");
* ``fr-ask-for-person.wav``: a French caller asks for a person ("je voudrais parler à un conseiller");
* ``screen-error.wav``: an English caller who shares a screen with an error dialog
  (``callwise simulate examples/calls/screen-error.wav --screen examples/screens/e-4290-dialog.png``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_calls import GAP_S, LEAD_S, RATE, speak, write  # noqa: E402

VOICES = {"en": "en-us", "es": "es", "fr": "fr-fr", "de": "de", "ja": "ja", "zh": "cmn"}
CALLS = [
    {"name": "es-export-data", "language": "es", "utterances": [
        "Hola. Quiero exportar todos mis datos.",
        "¿Dónde puedo descargar mis facturas?",
        "Eso es todo, gracias.",
        "Excelente.",
        "Muy bien, gracias.",
    ]},
    {"name": "fr-ask-for-person", "language": "fr", "utterances": [
        "Bonjour. Notre facture de ce mois est deux fois plus élevée que d'habitude.",
        "Je voudrais parler à un conseiller, s'il vous plaît.",
    ]},
    {"name": "screen-error", "language": "en", "utterances": [
        "Hi, I have a question about an error.",
        "Can you see my screen? What does this error mean?",
    ]},
]


def make(call: dict, tmp: Path) -> dict:
    parts = [np.zeros(int(LEAD_S * RATE), np.float32)]
    cursor = int(LEAD_S * RATE)
    entries = []
    for text in call["utterances"]:
        audio = speak(text, VOICES[call["language"]], tmp)
        parts += [audio, np.zeros(int(GAP_S * RATE), np.float32)]
        entries.append({"text": text, "start_s": round(cursor / RATE, 3), "end_s": round((cursor + len(audio)) / RATE, 3)})
        cursor += len(audio) + int(GAP_S * RATE)
    write(HERE / f"{call['name']}.wav", [np.concatenate(parts)])
    return {"file": f"{call['name']}.wav", "language": call["language"], "duration_s": round(cursor / RATE, 3),
            "utterances": entries}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = [make(c, Path(tmp)) for c in CALLS]
    (HERE / "languages.json").write_text(json.dumps({"calls": out}, ensure_ascii=False, indent=1) + "\n")
    print("\n".join(f"{c['file']}: {c['duration_s']} s" for c in out))


if __name__ == "__main__":
    main()
