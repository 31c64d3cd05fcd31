"""The danger screen: the eleven questions of the Lethality Assessment Program (Maryland).

Published rule: "yes" to any of questions 1-3, or to four or more of questions 4-11, screens
her in (high danger). A negative screen is "not screened in", never "safe". Only the result
and the numbers of the questions answered yes are kept for the specialist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

QUESTIONS = tuple(range(1, 12))
TRIGGER_ANY = frozenset({1, 2, 3})
COUNT_FROM = frozenset(range(4, 12))
COUNT_NEEDED = 4


class ScreenResult(enum.StrEnum):
    SCREENED_IN = "screened_in"
    NOT_SCREENED_IN = "not_screened_in"
    SKIPPED = "skipped"


def evaluate(answers: Mapping[int, bool | None]) -> tuple[ScreenResult, list[int]]:
    """The screen's result and the questions answered yes, from answers by question number.

    `None` (or a missing question) means she skipped it. Nothing answered at all: SKIPPED.
    """
    unknown = set(answers) - set(QUESTIONS)
    if unknown:
        raise ValueError(f"no such questions: {sorted(unknown)}")
    yes = sorted(q for q, a in answers.items() if a is True)
    if not any(a is not None for a in answers.values()):
        return ScreenResult.SKIPPED, []
    if TRIGGER_ANY & set(yes) or len(COUNT_FROM & set(yes)) >= COUNT_NEEDED:
        return ScreenResult.SCREENED_IN, yes
    return ScreenResult.NOT_SCREENED_IN, yes


def flags_to_text(flags: list[int]) -> str:
    return ",".join(str(f) for f in flags)


def flags_from_text(text: str | None) -> list[int]:
    if not text:
        return []
    return [int(f) for f in text.split(",") if f.strip().isdigit()]
