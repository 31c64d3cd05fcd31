"""A year of anonymous appeal records shaped like the center's 2020 annual report.

Used by the tests (known answers), the statistics benchmark and to show a coordinator what
the reports look like. The figures are the report's own: 410 legal consultations for 297
people, 537 psychological consultations for 305 people, the child psychologist's 92
consultations for 81 parents and 52 for 40 children, court representation in 19 civil and
7 criminal cases, the human rights defender in 5 civil and 6 criminal cases, 56 women
placed in the transit home, 926 hotline calls, and 115 appeals from all regions during the
state of emergency (25 March to 10 May 2020).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bot.core.crypto import Crypto

EMERGENCY_START = date(2020, 3, 25)
EMERGENCY_END = date(2020, 5, 10)
EMERGENCY_APPEALS = 115
HOTLINE_CALLS = 926
OBLASTS_AND_CITIES = ("bishkek", "osh_city", "chui", "osh", "jalal_abad", "issyk_kul",
                      "naryn", "talas", "batken")
REGION_WEIGHTS = {"bishkek": 40, "chui": 18, "osh_city": 8, "osh": 7, "jalal_abad": 7,
                  "issyk_kul": 6, "naryn": 3, "talas": 3, "batken": 3, "unspecified": 4,
                  "abroad": 1}


@dataclass(frozen=True)
class Service:
    outcome: str
    category: str
    for_whom: str
    consultations: int
    people: int


SERVICES_2020 = (
    Service("legal", "legal", "me", 410, 297),
    Service("psych", "psych", "me", 537, 305),
    Service("child_psych", "child", "child", 92, 81),  # parents asking about a child
    Service("child_psych", "child", "me", 52, 40),  # children themselves
    Service("court_civil", "legal", "me", 19, 19),
    Service("court_criminal", "legal", "me", 7, 7),
    Service("rights_civil", "legal", "me", 5, 5),
    Service("rights_criminal", "legal", "me", 6, 6),
    Service("shelter", "shelter", "me", 56, 56),
)


def appeals_2020(crypto: Crypto, *, seed: int = 2020) -> list[dict[str, Any]]:
    """Rows for the `appeals` table (one per consultation), deterministic for a seed."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    next_person = 1
    for service in SERVICES_2020:
        people = list(range(next_person, next_person + service.people))
        next_person += service.people
        visits = people + [rng.choice(people) for _ in range(service.consultations
                                                              - service.people)]
        for person in visits:
            urgency = rng.choices(("emergency", "high", "standard"), (12, 23, 65))[0]
            screen = rng.choices((None, "screened_in", "not_screened_in"), (35, 30, 35))[0]
            if urgency == "high":
                screen = "screened_in"
            minutes = {"emergency": rng.randint(0, 6), "high": rng.randint(1, 14),
                       "standard": rng.randint(2, 60)}[urgency]
            rows.append({
                "person": crypto.pseudonym(10_000_000 + person, 2020),
                "region": rng.choices(list(REGION_WEIGHTS), list(REGION_WEIGHTS.values()))[0],
                "category": service.category, "for_whom": service.for_whom,
                "urgency": urgency, "language": rng.choices(("ru", "ky", "en"), (62, 36, 2))[0],
                "out_of_hours": rng.random() < 0.38, "screen": screen,
                "outcome": service.outcome, "minutes_to_reply": minutes,
                "rating": rng.choice((None, 4, 5, 5, 3)), "channel": "telegram",
            })
    rng.shuffle(rows)
    # 115 appeals during the state of emergency, from every region; the rest outside it.
    window = (EMERGENCY_END - EMERGENCY_START).days + 1
    for index, row in enumerate(rows[:EMERGENCY_APPEALS]):
        if index < len(OBLASTS_AND_CITIES):
            row["region"] = OBLASTS_AND_CITIES[index]
        row["day"] = EMERGENCY_START + timedelta(days=rng.randrange(window))
        row["month"] = row["day"].year * 100 + row["day"].month
    outside = [d for d in (date(2020, 1, 1) + timedelta(days=i) for i in range(366))
               if not EMERGENCY_START <= d <= EMERGENCY_END]
    for row in rows[EMERGENCY_APPEALS:]:
        row["day"] = rng.choice(outside)
        row["month"] = row["day"].year * 100 + row["day"].month
    # The hotline's calls, recorded by staff: outside the emergency window, so the 115 stay.
    for index in range(HOTLINE_CALLS):
        day = rng.choice(outside)
        rows.append({
            "person": crypto.pseudonym(20_000_000 + index, 2020),
            "region": rng.choices(list(REGION_WEIGHTS), list(REGION_WEIGHTS.values()))[0],
            "category": None, "for_whom": None, "urgency": "standard",
            "language": rng.choices(("ru", "ky"), (62, 38))[0], "out_of_hours": False,
            "screen": None, "outcome": None, "minutes_to_reply": None, "rating": None,
            "channel": "hotline", "day": day, "month": day.year * 100 + day.month,
        })
    return rows
