"""End-of-call survey: the questions, and parsing a spoken 1-5 rating.

Spoken answers come through STT, so the parser accepts digits ("4", "4/5", "4 out of 5"),
words ("four", "four out of five", "a solid four"), other scales ("8 out of 10", "80 percent",
"three stars"), and plain judgements ("pretty bad", "not great", "excellent", "it was fine").
An explicit number wins over a judgement; a number out of range is ignored. Ratings of 2 or less
need a follow-up.

The same in Spanish, French, German, Japanese and Chinese (``parse_rating(text, "fr")``): number
words ("cuatro", "cinq sur cinq", "vier von fünf", "5点中4点", "五分之四", "四颗星") and judgements
("muy bien", "pas terrible", "sehr schlecht", "まあまあ", "还可以"). Articles that are also the
word for one ("un", "una", "ein") count only in "un sur cinq"-style phrases, and a CJK numeral
only on its own or with 点/分/星, so "一般" (so-so) is not a 1. English is always tried too: callers mix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RATING_QUESTION = ("Before you go: on a scale of one to five, how would you rate the help you got today? "
                   "Five is excellent.")
COMMENT_QUESTION = "Thank you. Is there anything you'd like to tell us about the call?"
CLOSING = "Thanks for your feedback. Goodbye!"
FOLLOWUP_AT_OR_BELOW = 2

_NUMBERS = {"zero": 0, "one": 1, "won": 1, "two": 2, "to": None, "too": None, "three": 3, "four": 4,
            "for": None, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUM = r"(\d+(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten)"
# (?<![\d.]): a number starts only where a number starts; without it a long digit run is quadratic
_OUT_OF = re.compile(r"(?<![\d.])" + _NUM + r"\s*(?:out of|/|of|outta)\s*" + _NUM, re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,3})\s*(?:%|percent)", re.IGNORECASE)
_STARS = re.compile(r"(?<![\d.])" + _NUM + r"\s*stars?\b", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w.])" + _NUM + r"(?!\w|\.\d)", re.IGNORECASE)

# Judgement phrases, most specific first (a phrase is tried before the words inside it).
_PHRASES: list[tuple[re.Pattern[str], int]] = [
    (re.compile(p, re.IGNORECASE), r) for p, r in [
        (r"\b(?:not (?:bad|too bad)|could(?:'ve| have) been (?:better|worse)|so-?so|mixed|average|"
         r"middling|meh|mediocre|neutral|okay-?ish)\b", 3),
        (r"\b(?:not (?:great|good|very good|helpful|happy|satisfied)|pretty bad|quite bad|rather bad|"
         r"poor|bad|disappointing|disappointed|unhelpful|unsatisfied|dissatisfied|below average)\b", 2),
        (r"\b(?:very bad|really bad|terrible|awful|horrible|the worst|worst|useless|appalling|"
         r"abysmal|dreadful|a waste of time)\b", 1),
        (r"\b(?:excellent|amazing|perfect|fantastic|outstanding|superb|brilliant|wonderful|"
         r"awesome|incredible|the best|top notch|very (?:good|helpful)|really (?:good|helpful)|"
         r"extremely helpful|loved it)\b", 5),
        (r"\b(?:good|pretty good|great|helpful|satisfied|happy|nice|solid|well done)\b", 4),
        (r"\b(?:ok|okay|fine|alright|all right|decent|fair|acceptable|not bad)\b", 3),
    ]
]
# The longest matching phrase wins, so "not bad" beats "bad" and "pretty good" beats "good".


@dataclass(frozen=True)
class SurveyAnswer:
    rating: int | None
    feedback_text: str
    requires_followup: bool
    matched: str | None  # what decided the rating, for logs and tests

    @property
    def understood(self) -> bool:
        return self.rating is not None


def _num(token: str) -> float | None:
    token = token.lower()
    if token in _NUMBERS:
        value = _NUMBERS[token]
        return None if value is None else float(value)
    try:
        return float(token)
    except ValueError:
        return None


def _scale(value: float, top: float) -> int | None:
    if top <= 0 or value < 0 or value > top:
        return None
    return max(1, min(5, int(value / top * 5 + 0.5 + 1e-9)))


def parse_rating(text: str, language: str = "en") -> tuple[int | None, str | None]:
    """The 1-5 rating in a spoken answer and the words that decided it, or ``(None, None)``."""
    lang = (language or "en").lower()[:2]
    if lang in _FOREIGN:
        rating, matched = _FOREIGN[lang].parse(text)
        if rating is not None:
            return rating, matched
    return _parse_english(text)


def _parse_english(text: str) -> tuple[int | None, str | None]:
    for m in _OUT_OF.finditer(text):
        value, top = _num(m.group(1)), _num(m.group(2))
        if value is not None and top is not None and (r := _scale(value, top)) is not None:
            return r, m.group(0)
    if pm := _PERCENT.search(text):
        if (r := _scale(float(pm.group(1)), 100)) is not None:
            return r, pm.group(0)
    if sm := _STARS.search(text):
        value = _num(sm.group(1))
        if value is not None and 1 <= value <= 5:
            return int(round(value)), sm.group(0)
    for m in _BARE.finditer(text):
        value = _num(m.group(1))
        if value is not None and 1 <= value <= 5 and value == int(value):
            return int(value), m.group(0)
    best: tuple[int, int, str] | None = None  # (length of the phrase, rating, phrase)
    for pattern, rating in _PHRASES:
        for m in pattern.finditer(text):
            if best is None or len(m.group(0)) > best[0]:
                best = (len(m.group(0)), rating, m.group(0))
    if best:
        return best[1], best[2]
    return None, None


def parse_answer(rating_text: str, comment_text: str = "", language: str = "en") -> SurveyAnswer:
    """Combine the spoken rating and the optional comment into what ``survey_responses`` stores."""
    rating, matched = parse_rating(rating_text, language)
    feedback = " ".join(t.strip() for t in (rating_text, comment_text) if t and t.strip())
    return SurveyAnswer(
        rating=rating,
        feedback_text=feedback,
        requires_followup=rating is not None and rating <= FOLLOWUP_AT_OR_BELOW,
        matched=matched,
    )


# ------------------------------------------------------------------------------- other languages
class _Scale:
    """Rating words of one language: numbers, "N out of M" (either order), stars, judgements."""

    def __init__(self, numbers: dict[str, int], out_of: str, *, top_first: str = "", stars: str = "",
                 phrases: dict[int, list[str]], bare_words: bool = True, cjk: bool = False) -> None:
        self.numbers = numbers
        self.cjk = cjk
        words = "|".join(sorted(map(re.escape, numbers), key=len, reverse=True))
        num = rf"(\d+(?:[.,]\d+)?|{words})"
        b, e = ("", "") if cjk else (r"(?<![\w.])", r"(?!\w)")
        self.out_of = re.compile(b + num + rf"\s*(?:{out_of})\s*" + num + e, re.IGNORECASE) if out_of else None
        self.top_first = re.compile(num + rf"\s*(?:{top_first})\s*" + num, re.IGNORECASE) if top_first else None
        self.stars = re.compile(stars.replace("NUM", num), re.IGNORECASE) if stars else None
        bare = [w for w, v in numbers.items() if bare_words or v != 1]
        bare_rx = "|".join(sorted(map(re.escape, bare), key=len, reverse=True))
        if cjk:  # a numeral alone (punctuation aside), or a digit anywhere
            self.bare = re.compile(rf"^\s*({bare_rx}|\d)\s*[。．.!！]?\s*$|(?<![\d.])(\d)(?![\d.])")
        else:
            self.bare = re.compile(rf"(?<![\w.])(\d+|{bare_rx})(?!\w|[.,]\d)", re.IGNORECASE)
        self.phrases = [(re.compile(p if cjk else rf"\b{p}\b", re.IGNORECASE), r)
                        for r, ps in phrases.items() for p in ps]

    def num(self, token: str) -> float | None:
        t = token.lower()
        if t in self.numbers:
            return float(self.numbers[t])
        try:
            return float(t.replace(",", "."))
        except ValueError:
            return None

    def parse(self, text: str) -> tuple[int | None, str | None]:
        text = text[:2000]
        for rx, top_first in ((self.out_of, False), (self.top_first, True)):
            if rx is None:
                continue
            for m in rx.finditer(text):
                a, b = self.num(m.group(1)), self.num(m.group(2))
                value, top = (b, a) if top_first else (a, b)
                if value is not None and top is not None and (r := _scale(value, top)) is not None:
                    return r, m.group(0)
        if self.stars is not None and (sm := self.stars.search(text)):
            value = self.num(next(g for g in sm.groups() if g))
            if value is not None and 1 <= value <= 5:
                return int(round(value)), sm.group(0)
        for m in self.bare.finditer(text):
            token = next(g for g in m.groups() if g)
            value = self.num(token)
            if value is not None and 1 <= value <= 5 and value == int(value):
                return int(value), m.group(0).strip()
        best: tuple[int, int, str] | None = None
        for pattern, rating in self.phrases:
            for m in pattern.finditer(text):
                if best is None or len(m.group(0)) > best[0]:
                    best = (len(m.group(0)), rating, m.group(0))
        return (best[1], best[2]) if best else (None, None)


_CJK_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
                "１": 1, "２": 2, "３": 3, "４": 4, "５": 5}
_FOREIGN: dict[str, _Scale] = {
    "es": _Scale(
        {"uno": 1, "una": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
         "ocho": 8, "nueve": 9, "diez": 10},
        "de|sobre|entre", stars=r"NUM\s*estrellas?", bare_words=False, phrases={
            5: ["excelente", "perfecto", "perfecta", "genial", "fant[aá]stico", "estupendo", "muy bien", "muy buena?",
                "de maravilla", "incre[ií]ble"],
            4: ["bien", "buena?", "satisfecho", "satisfecha", "contento", "contenta", "bastante bien"],
            3: ["regular", "normal", "m[aá]s o menos", "aceptable", "ni bien ni mal", "no est[aá] mal", "pasable"],
            2: ["mal", "mala?o?", "no muy bien", "insatisfecho", "insatisfecha", "decepcionante", "pobre"],
            1: ["muy mal", "muy malo", "muy mala", "fatal", "horrible", "terrible", "p[eé]simo", "p[eé]sima",
                "in[uú]til", "desastroso"],
        }),
    "fr": _Scale(
        {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
         "neuf": 9, "dix": 10},
        "sur|de", stars=r"NUM\s*[ée]toiles?", bare_words=False, phrases={
            5: ["excellent", "excellente", "parfait", "parfaite", "g[ée]nial", "super", "tr[eè]s bien", "formidable",
                "impeccable"],
            4: ["bien", "bon", "bonne", "satisfait", "satisfaite", "content", "contente", "plut[ôo]t bien"],
            3: ["moyen", "moyenne", "correct", "correcte", "passable", "pas mal", "bof", "[çc]a va"],
            2: ["mauvais", "mauvaise", "pas terrible", "pas tr[eè]s bien", "d[ée][çc]u", "d[ée][çc]ue", "insatisfait"],
            1: ["tr[eè]s mauvais", "tr[eè]s mauvaise", "nul", "nulle", "horrible", "catastrophique", "inutile",
                "lamentable"],
        }),
    "de": _Scale(
        {"eins": 1, "ein": 1, "eine": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
         "funf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10},
        "von|aus", stars=r"NUM\s*stern(?:e|en)?\b", bare_words=False, phrases={
            5: ["ausgezeichnet", "hervorragend", "perfekt", "super", "sehr gut", "toll", "wunderbar", "exzellent"],
            4: ["gut", "zufrieden", "ganz gut", "prima"],
            3: ["okay", "ok", "mittelm[äa][ßs]ig", "geht so", "in ordnung", "durchschnittlich", "passabel", "befriedigend"],
            2: ["schlecht", "nicht gut", "nicht so gut", "unzufrieden", "entt[äa]uschend", "mangelhaft"],
            1: ["sehr schlecht", "furchtbar", "schrecklich", "katastrophal", "nutzlos", "miserabel", "ungen[üu]gend"],
        }),
    "ja": _Scale(
        _CJK_NUMBERS, "", top_first="点?中|段階で|点満点で|分の", stars=r"(?:星|ほし)\s*NUM|NUM\s*(?:点|つ星|ポイント)",
        cjk=True, phrases={
            5: ["最高", "素晴らしい", "すばらしい", "とても良", "とてもよ", "完璧", "大満足"],
            4: ["良かった", "よかった", "良い", "よい", "満足", "助かりました"],
            3: ["普通", "ふつう", "まあまあ", "まずまず"],
            2: ["悪い", "わるい", "不満", "良くない", "よくない", "いまいち", "イマイチ"],
            1: ["最悪", "ひどい", "酷い", "全然だめ", "役に立たない"],
        }),
    "zh": _Scale(
        _CJK_NUMBERS, "", top_first="分之|分中|分里", stars=r"NUM\s*(?:颗星|星|分)",
        cjk=True, phrases={
            5: ["非常好", "很好", "完美", "太棒了", "特别好", "非常满意", "满分"],
            4: ["好", "不错", "满意", "挺好"],
            3: ["一般", "还行", "还可以", "凑合", "马马虎虎"],
            2: ["不好", "不满意", "差", "不太好"],
            1: ["很差", "非常差", "太差", "糟糕", "没用", "极差"],
        }),
}
