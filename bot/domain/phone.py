"""Phone numbers in Kyrgyzstan's formats: +996 XXX XXX XXX, 0XXX XXX XXX, 996XXXXXXXXX."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")


def normalise_kg_phone(text: str) -> str | None:
    """`+996 XXX XXX XXX` for a valid Kyrgyz number (mobile or landline), else None."""
    raw = _SEPARATORS.sub("", text.strip())
    if len(raw) > 20:
        return None
    if raw.startswith("+"):
        raw = raw[1:]
        if not raw.startswith("996"):
            return None
    if not raw.isdigit():
        return None
    if raw.startswith("996") and len(raw) == 12:
        national = raw[3:]
    elif raw.startswith("0") and len(raw) == 10:
        national = raw[1:]
    elif len(raw) == 9:
        national = raw
    else:
        return None
    # National numbers are 9 digits: mobile 5xx/7xx/9xx/22x, landlines 3xxx (e.g. 312 Bishkek).
    if national[0] not in "235679":
        return None
    return f"+996 {national[:3]} {national[3:6]} {national[6:]}"
