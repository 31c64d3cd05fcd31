"""When the office is open and when a specialist can call: from the weekly hours, the
holidays and the roster in the configuration, in the center's time zone.

What it answers, so that no client is promised a time nobody keeps:
- whether the office is open at a moment (appeals outside count as "out of hours");
- when it opens next (a Friday night's answer is Monday 09:00, or later after a holiday);
- which times to offer her for a call or a message at a safe time: never at night (a phone
  ringing at 3 a.m. in a shared home), never on a holiday, and only when someone of the
  role is on the roster then (or, for a role without a roster, inside office hours);
- when someone of a role is next on the roster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.config import WEEKDAYS, Settings
from bot.core.i18n import Texts

# A call or a message at a set time is offered only between these local hours.
DAY_STARTS = time(8, 0)
DAY_ENDS = time(21, 0)
# The clock times offered on a day, besides "in 1 h" and "in 3 h".
CLOCK_SLOTS = (time(10, 0), time(14, 0), time(17, 0), time(19, 0))
RELATIVE_SLOTS = (1, 3)  # hours from now
SLOTS_SHOWN = 4
DAYS_AHEAD = 8
# The roster's coverage is looked at in half hours.
STEP = timedelta(minutes=30)


@dataclass(frozen=True)
class RosterShift:
    role: str
    weekday: int
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        day = local.weekday()
        if start < end:
            return day == self.weekday and start <= minute < end
        if day == self.weekday and minute >= start:
            return True
        return day == (self.weekday + 1) % 7 and minute < end


@dataclass(frozen=True)
class Slot:
    """A time she may choose: `hours` from now, or a clock time on a day."""

    when: datetime
    hours: int | None = None

    @property
    def code(self) -> str:
        """For a button: "r1" (in an hour), or the local time "a202612071000"."""
        return f"r{self.hours}" if self.hours else "a" + self.when.strftime("%Y%m%d%H%M")


@dataclass(frozen=True)
class Hours:
    tz: ZoneInfo
    days: frozenset[int]
    opens: time
    closes: time
    holidays: frozenset[date]
    roster: tuple[RosterShift, ...]

    @classmethod
    def of(cls, settings: Settings, members: dict[str, set[str]] | None = None) -> Hours:
        """From the configuration; with `members` (name, case-folded → roles), only the
        roster's shifts of members who exist and have the shift's role."""
        org = settings.organization
        shifts = [s for s in settings.roster if members is None
                  or s.role in members.get(s.member.casefold(), set())]
        return cls(
            tz=org.tz, days=frozenset(WEEKDAYS.index(d) for d in org.office_days),
            opens=org.office_open, closes=org.office_close,
            holidays=frozenset(org.holidays),
            roster=tuple(RosterShift(s.role, WEEKDAYS.index(d), s.start, s.end)
                         for s in shifts for d in s.days),
        )

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_open(self, moment: datetime) -> bool:
        local = self.local(moment)
        return (local.weekday() in self.days and local.date() not in self.holidays
                and self.opens <= local.time() < self.closes)

    def next_opening(self, moment: datetime) -> datetime | None:
        """When the office next opens (`moment` itself if it is open), or None if it is
        closed for the coming five weeks (a configuration with no office days)."""
        if self.is_open(moment):
            return moment
        local = self.local(moment)
        for ahead in range(36):
            day = local.date() + timedelta(days=ahead)
            if day.weekday() not in self.days or day in self.holidays:
                continue
            opening = datetime.combine(day, self.opens, self.tz)
            if opening > local:
                return opening
        return None

    def _roles_on_roster(self, role: str, fallback: bool = True) -> tuple[str, ...]:
        # A child psychologist's cases go to a psychologist when none is on duty (routing).
        return (role, "psychologist") if role == "child_psychologist" and fallback \
            else (role,)

    def rostered(self, role: str, moment: datetime, fallback: bool = True) -> bool:
        local = self.local(moment)
        roles = self._roles_on_roster(role, fallback)
        return any(s.role in roles and s.covers(local) for s in self.roster)

    def gaps(self, role: str, moment: datetime, *, days: int = 7,
             fallback: bool = False) -> list[tuple[datetime, datetime]]:
        """The stretches of the coming `days` with nobody of `role` on the roster, in
        local time, to the half hour."""
        local = self.local(moment)
        start = local.replace(minute=0 if local.minute < 30 else 30, second=0, microsecond=0)
        ranges: list[tuple[datetime, datetime]] = []
        for i in range(int(timedelta(days=days) / STEP)):
            slot = start + STEP * i
            if self.rostered(role, slot, fallback):
                continue
            if ranges and ranges[-1][1] == slot:
                ranges[-1] = (ranges[-1][0], slot + STEP)
            else:
                ranges.append((slot, slot + STEP))
        return ranges

    def has_roster(self, role: str) -> bool:
        roles = self._roles_on_roster(role)
        return any(s.role in roles for s in self.roster)

    def can_reach(self, role: str, moment: datetime) -> bool:
        """Whether a specialist of `role` can call or write to her at `moment`."""
        local = self.local(moment)
        if not DAY_STARTS <= local.time() < DAY_ENDS or local.date() in self.holidays:
            return False
        if self.has_roster(role):
            return self.rostered(role, moment)
        return self.is_open(moment)

    def next_on_duty(self, role: str, moment: datetime) -> datetime | None:
        """When someone of `role` is next on the roster (or, without a roster for the
        role, when the office next opens); `moment` itself if someone is now."""
        if not self.has_roster(role):
            return self.next_opening(moment)
        if self.rostered(role, moment):
            return moment
        local = self.local(moment)
        roles = self._roles_on_roster(role)
        starts = []
        for shift in self.roster:
            if shift.role not in roles:
                continue
            for ahead in range(DAYS_AHEAD):
                day = local.date() + timedelta(days=ahead)
                if day.weekday() == shift.weekday:
                    start = datetime.combine(day, shift.start, self.tz)
                    if start > local:
                        starts.append(start)
        return min(starts) if starts else None

    def slots(self, role: str, moment: datetime) -> list[Slot]:
        """Up to four times to offer her, soonest first: "in 1 h" and "in 3 h" when a
        specialist can reach her then, then clock times on the coming days."""
        found = [Slot(moment + timedelta(hours=h), h) for h in RELATIVE_SLOTS
                 if self.can_reach(role, moment + timedelta(hours=h))]
        local = self.local(moment)
        earliest = moment + timedelta(hours=max(RELATIVE_SLOTS) if found else 1)
        roles = self._roles_on_roster(role)
        # The office's opening and the role's shift starts, so that a night or weekend
        # shift has a time to offer too.
        clocks = sorted({*CLOCK_SLOTS, self.opens,
                         *(s.start for s in self.roster if s.role in roles)})
        for ahead in range(DAYS_AHEAD):
            day = local.date() + timedelta(days=ahead)
            for clock in clocks:
                when = datetime.combine(day, clock, self.tz)
                if len(found) >= SLOTS_SHOWN:
                    return found
                if when > earliest and self.can_reach(role, when):
                    found.append(Slot(when))
        return found

    def slot(self, role: str, moment: datetime, code: str) -> Slot | None:
        """The slot a button names, if it is still one to offer (else None: the screen
        is shown again with the times that hold now)."""
        return next((s for s in self.slots(role, moment) if s.code == code), None)


def when_label(texts: Texts, language: str | None, moment: datetime, *, now: datetime,
               tz: ZoneInfo) -> str:
    """A time as a client or a specialist reads it: "Today 14:00", "Tomorrow 10:00",
    "Monday 09:00" within the week, else "07.01 09:00"."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    clock = local.strftime("%H:%M")
    ahead = (local.date() - today).days
    if ahead == 0:
        return texts.t(language, "slot_today", time=clock)
    if ahead == 1:
        return texts.t(language, "slot_tomorrow", time=clock)
    if 1 < ahead < 7:
        day = texts.t(language, "weekdays").split("|")[local.weekday()]
        return texts.t(language, "slot_day", day=day, time=clock)
    return local.strftime("%d.%m %H:%M")
