"""Money amounts as people say them and as speech to text writes them.

``amounts(text)`` finds ``$1,250.50``, ``349 dollars``, ``2.5k``, ``two hundred and fifty bucks``,
``three forty nine`` (349), ``twelve fifty`` (1250), ``one twenty nine ninety nine`` (129.99),
``two point five k`` (2500), ``two and a half thousand``, ``a grand``, ``fifteen thousand rupees``.
A run of number words is an amount when a currency word follows it or precedes it, or when a money
verb ("charged", "billed", "debited", "an invoice for"...) comes just before it: "you charged me three
forty nine" is an amount, "three seats" is not. Values are in the currency said; rupees are
converted to dollars at a fixed rate (the threshold is in USD), pounds and euros count one to one.

One pass over the tokens, runs capped at ``MAX_RUN`` words: linear in the text.
"""

from __future__ import annotations

import re

UNITS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000, "k": 1000, "million": 1_000_000, "lakh": 100_000,
          "lakhs": 100_000}
_NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES) | {"point", "and", "a", "half"}
#: currency after the number (``fifty bucks``) or before it (``usd 200``, ``rupees 5000``)
CURRENCY = {"dollars": 1.0, "dollar": 1.0, "bucks": 1.0, "buck": 1.0, "usd": 1.0, "quid": 1.0, "pounds": 1.0,
            "pound": 1.0, "gbp": 1.0, "euros": 1.0, "euro": 1.0, "eur": 1.0, "rupees": 1 / 83, "rupee": 1 / 83,
            "rs": 1 / 83, "inr": 1 / 83}
_SYMBOL = {"$": 1.0, "£": 1.0, "€": 1.0, "₹": 1 / 83}
#: words that make the number after them money, within ``_VERB_WINDOW`` tokens
MONEY_VERBS = {"charged", "charge", "charges", "charging", "billed", "bill", "billing", "debited", "deducted",
               "paid", "pay", "payment", "invoice", "invoiced", "invoices", "took", "taken", "cost", "costs",
               "refund", "statement", "amount", "renewal", "fee", "price", "overcharged", "debit", "transaction",
               "withdrawn", "withdrew", "subscription"}
_VERB_WINDOW = 4
#: words that make the number before them money ("three forty nine on my card")
MONEY_AFTER = {"charge", "charged", "payment", "debit", "debited", "deducted", "card", "statement", "invoice",
               "bill", "billed", "refund", "refunded", "taken", "withdrawn"}
#: a number before one of these counts things, not money
COUNTED = {"seats", "seat", "users", "user", "times", "time", "months", "month", "years", "year", "days", "day",
           "weeks", "week", "hours", "hour", "minutes", "people", "licences", "licenses", "licence", "license",
           "members", "accounts", "invoices", "charges", "payments", "percent", "gb", "mb", "tb", "pm", "am"}
MAX_RUN = 12  # a longer run of number words is a list or a code, not an amount
_TOKEN = re.compile(r"[$£€₹]|\d[\d,]*(?:\.\d+)?k?|[a-z]+", re.IGNORECASE)
_DIGITS = re.compile(r"(\d[\d,]*(?:\.\d+)?)(k?)", re.IGNORECASE)


def _groups(words: list[str]) -> list[int] | None:
    """Words without scale words as groups of 0-99 (``forty nine`` is one group); None when malformed."""
    out: list[int] = []
    pending_tens: int | None = None
    for w in words:
        if w in TENS:
            if pending_tens is not None:
                out.append(pending_tens)
            pending_tens = TENS[w]
        elif w in UNITS:
            if pending_tens is not None:
                out.append(pending_tens + UNITS[w])
                pending_tens = None
            else:
                out.append(UNITS[w])
        elif w in TEENS:
            if pending_tens is not None:
                out.append(pending_tens)
                pending_tens = None
            out.append(TEENS[w])
        else:
            return None
    if pending_tens is not None:
        out.append(pending_tens)
    return out


def _cardinal(words: list[str]) -> float | None:
    """``two hundred and fifty`` -> 250, ``three forty nine`` -> 349, ``two point five k`` -> 2500."""
    words = [w for w in words if w != "and"]
    if not words:
        return None
    if words[0] == "a":  # "a hundred", "a grand", "a thousand"
        words = ["one"] + words[1:]
    if "half" not in words:
        words = [w for w in words if w != "a"]
    if "point" in words:
        i = words.index("point")
        whole = _cardinal(words[:i]) if i else 0.0
        tail = words[i + 1:]
        scale = 1
        while tail and tail[-1] in SCALES:
            scale *= SCALES[tail.pop()]
        digits = [UNITS.get(w) for w in tail]
        if whole is None or not digits or any(d is None for d in digits):
            return None
        frac = float("0." + "".join(str(d) for d in digits))
        return (whole + frac) * scale
    if "half" in words:  # "two and a half thousand", "one and a half k"
        i = words.index("half")
        head = [w for w in words[:i] if w != "a"]
        rest = words[i + 1:]
        base = _cardinal(head) if head else 0.0
        scale = 1
        for w in rest:
            if w not in SCALES:
                return None
            scale *= SCALES[w]
        return None if base is None else (base + 0.5) * scale
    if any(w in SCALES for w in words):
        total = current = 0.0
        chunk: list[str] = []
        for w in words:
            if w not in SCALES:
                chunk.append(w)
                continue
            g = _groups(chunk)
            if g is None or len(g) > 1:
                return None
            v = float(g[0]) if g else (0.0 if current else 1.0)
            if w == "hundred":
                current = (current + v) * 100
            else:
                total += (current + v) * SCALES[w]
                current = 0.0
            chunk = []
        g = _groups(chunk)
        if g is None or len(g) > 2:
            return None
        if len(g) == 1:
            current += g[0]
        elif len(g) == 2:  # "a hundred twenty nine ninety nine": the second group is cents
            if g[1] < 10:
                return None
            current += g[0] + g[1] / 100
        return total + current
    g = _groups(words)
    if not g:
        return None
    if len(g) == 1:
        return float(g[0])
    if len(g) == 2 and 20 <= g[0] and g[1] >= 10:  # "forty nine ninety nine": dollars and cents
        return g[0] + g[1] / 100
    if len(g) == 2 and g[0] >= 1 and g[1] >= 10:  # "three forty nine", "twelve fifty", "nineteen ninety nine"
        return float(g[0] * 100 + g[1])
    if len(g) == 3 and g[0] >= 1 and g[1] >= 10 and g[2] >= 10:  # "one twenty nine ninety nine"
        return g[0] * 100 + g[1] + g[2] / 100
    return None


def amounts(text: str) -> list[float]:
    """Money amounts in ``text``, in dollars (see the module docstring for the forms read)."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    out: list[float] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        m = _DIGITS.fullmatch(t)
        if m is not None:
            raw = m.group(1).replace(",", "")
            try:
                value = float(raw) if len(raw) <= 16 else None
            except ValueError:
                value = None
            j = i + 1
            scale = 1000.0 if m.group(2) else 1.0
            if j < n and tokens[j] in SCALES:
                scale *= SCALES[tokens[j]]
                j += 1
            if value is not None:
                rate = _rate(tokens, i, j)
                if rate is not None:
                    out.append(round(value * scale * rate, 2))
            i = j
            continue
        if t in _NUMBER_WORDS and t not in ("and", "a", "point", "half") or (
                t == "a" and i + 1 < n and tokens[i + 1] in SCALES):
            j = i
            while j < n and tokens[j] in _NUMBER_WORDS:
                j += 1
            while j > i and tokens[j - 1] in ("and", "a", "point"):
                j -= 1
            run = tokens[i:j]
            if len(run) <= MAX_RUN:
                value = _cardinal(run)
                rate = _rate(tokens, i, j)
                if value is not None and value > 0 and rate is not None:
                    out.append(round(value * rate, 2))
            i = max(j, i + 1)
            continue
        i += 1
    return out


def _rate(tokens: list[str], start: int, end: int) -> float | None:
    """The dollar rate of the number at ``tokens[start:end]``: from a currency word after it or a
    symbol or currency word before it; 1.0 after a money verb; None when it is not money."""
    if end < len(tokens) and tokens[end] in CURRENCY:
        return CURRENCY[tokens[end]]
    if start > 0 and tokens[start - 1] in _SYMBOL:
        return _SYMBOL[tokens[start - 1]]
    if start > 0 and tokens[start - 1] in CURRENCY:
        return CURRENCY[tokens[start - 1]]
    if end < len(tokens) and tokens[end] in COUNTED:  # "billed for two hundred seats"
        return None
    if tokens[end - 1] in ("k", "grand") or tokens[start].endswith("k"):  # "two point five k", "a grand", "2.5k"
        return 1.0
    after = tokens[end:end + _VERB_WINDOW]
    if any(w in MONEY_AFTER for w in after) and not any(w[0].isdigit() or w in CURRENCY for w in after):
        return 1.0  # "three forty nine on my card", "two fifty came out of my account"
    for w in reversed(tokens[max(0, start - _VERB_WINDOW):start]):
        if w in MONEY_VERBS:
            return 1.0
        if w in CURRENCY or w[0].isdigit():  # "paid 12 dollars for 3 seats": the verb was the first number's
            return None
    return None
