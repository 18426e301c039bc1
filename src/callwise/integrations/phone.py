"""Phone numbers as people type them, made comparable: E.164 through Google's libphonenumber (``phonenumbers``).

A number without a country code is read in the default region (``CALLWISE_DEFAULT_PHONE_REGION``, ``US``).
``(555) 010-0100``, ``555.010.0100`` and ``+1 555 010 0100`` are all ``+15550100100``; a string that is not
a phone number gives ``None`` rather than a guess.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


def parse(raw: str | None, region: str = DEFAULT_REGION) -> phonenumbers.PhoneNumber | None:
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """``+15550100100`` for any way of writing the number; None when it is not a possible phone number."""
    number = parse(raw, region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else None


def national_digits(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The national significant number (``5550100100``): what CRMs' phone search indexes hold."""
    number = parse(raw, region)
    return phonenumbers.national_significant_number(number) if number else None


def same_number(a: str | None, b: str | None, region: str = DEFAULT_REGION) -> bool:
    x, y = e164(a, region), e164(b, region)
    return x is not None and x == y
