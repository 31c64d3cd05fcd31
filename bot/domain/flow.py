"""The client's journey as a state machine kept in the database (`Client.step`/`step_data`).

Danger first: the first screen asks whether she is in danger now; the emergency numbers
come in one message the moment she says yes, before anything is asked. The triage (for
whom, kind of help, region, the danger screen, how to reach her) can be skipped and gone
back from at every step; nothing is required but her consent to be contacted.

The flow is a table (`RENDERERS`, `ACTIONS` at the end of this module): each step's screen,
and each kind of button (`bot.domain.callbacks`) with what a tap on it does and whether it
counts only on her current menu. This module decides every move of her step; besides it,
only `bot.domain.clients` (storing the record the flow changed), `bot.domain.retention`
(an erased or idle record starts again at `Step.NEW`) and `bot.core.keys` (re-encrypting a
pending callback number) write it, and staff's code changes it only through
`ask_for_rating` (tests/test_flow_table.py).

Everything here is free of Telegram types: a `Reply` says what to show, the handler shows it.

Data access: her record is the `ClientRecord` of `bot.domain.clients` (Core statements,
never an entity), her step written back by it or, for a case staff closed, by one Core
UPDATE here (`ask_for_rating`); a case, and her record for a check-in's reach, are entities
from the session (`session.get`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import db
from bot.core.clock import aware
from bot.core.config import LANGUAGES, Settings
from bot.core.crypto import Crypto
from bot.core.i18n import LANGUAGE_NAMES, Texts
from bot.domain import callbacks as cb
from bot.domain import cases as case_service
from bot.domain import checkin, code_word, danger, screening
from bot.domain.clients import ClientRecord, mark_back, mark_exit
from bot.domain.hours import Hours, when_label
from bot.domain.phone import normalise_kg_phone
from bot.domain.screens import Button, Screen, small_number
from bot.domain.staff import local_time
from models import Case, CaseStatus, Client, Urgency

log = logging.getLogger(__name__)


class Step(StrEnum):
    """Where she is in the conversation (`Client.step`): each has its screen in `RENDERERS`."""

    NEW = "new"
    HOME = "home"
    EMERGENCY = "emergency"
    SAFETY = "safety"
    FOR = "t_for"
    CATEGORY = "t_cat"
    REGION = "t_region"
    SCREEN = "t_screen"
    QUESTION = "t_q"
    CONTACT = "t_contact"
    TIME = "t_time"
    PHONE = "t_phone"
    CONFIRM = "t_confirm"
    WAITING = "waiting"
    LIBRARY = "library"
    RESOURCE = "resource"
    CASE_REGION = "case_region"
    FORGET = "forget"
    LANGUAGE = "language"
    AUTODELETE = "autodelete"
    NOT_NOW = "not_now"
    RATE = "rate"
    CODE_WORD = "code_word"


STEPS = frozenset(Step)
AUTODELETE_CHOICES = {60: 60, 1440: 1440, 0: None}
DEFAULT_AUTODELETE = 60


@dataclass
class Reply:
    """What the bot does in answer to one input from a client."""

    screens: list[Screen] = field(default_factory=list)
    # Replace the message whose button was pressed with the first screen (in-place menus).
    edit: bool = False
    toast: str | None = None
    quick_exit: bool = False
    forget: bool = False
    # The client's message goes to her specialist through the relay (to `relay_to`, her
    # specialist's id and encrypted Telegram id, when known).
    relay_case_id: int | None = None
    relay_to: tuple[int, bytes] | None = None
    # Case cards and alerts for staff, sent after the state is committed.
    route: case_service.RouteOutcome | None = None
    # A new case to offer once her answer is on its way (`case_service.route_held`).
    held: case_service.Held | None = None
    # Quick exit: her cases just paused (their holders are told); the code word: the case
    # she came back to (and the cases of whoever wrote here meanwhile, paused in turn).
    paused: list[case_service.Paused] = field(default_factory=list)
    resumed: case_service.Resumed | None = None
    # Her message is deleted from her chat at once: it brought her back with her code word.
    delete_incoming: bool = False
    # Her message held her code word in a conversation: it goes nowhere, and nothing is said.
    kept_back: bool = False
    # The relayed message is one she edited: her specialist is told before the new version.
    edited: bool = False
    # Her message came while this request waited: its id is kept, and it is copied to the
    # specialist who takes the case, after the card.
    hold_for_case: int | None = None


@dataclass
class Flow:
    """One client's conversation for the length of one update."""

    session: AsyncSession
    client: ClientRecord
    telegram_id: int
    texts: Texts
    settings: Settings
    crypto: Crypto
    now: datetime
    data: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        # JSON columns are not change-tracked in place: work on a copy, write it back.
        self.data = dict(self.client.step_data or {})

    # ------------------------------------------------------------------ helpers

    @property
    def lang(self) -> str:
        return self.texts.lang(self.client.language)

    def t(self, key: str, **values: Any) -> str:
        return self.texts.t(self.lang, key, **values)

    def b(self, key: str, data: cb.Callback) -> Button:
        return Button.of(self.t(key), data)

    def exit_row(self) -> list[Button]:
        return [self.b("btn_exit", cb.Exit())]

    def nav_row(self, back: bool = True, skip: bool = True) -> list[Button]:
        row = []
        if back:
            row.append(self.b("btn_back", cb.Back()))
        if skip:
            row.append(self.b("btn_skip", cb.Skip()))
        return row

    def save(self) -> None:
        self.client.step_data = dict(self.data)

    def go(self, step: Step, *, remember: bool = True, **values: Any) -> None:
        """Move to `step`, remembering where she was so Back can return."""
        if remember and self.client.step in STEPS - {Step.NEW, Step.WAITING}:
            history = list(self.data.get("hist", []))
            history.append(self._position())
            self.data["hist"] = history[-30:]
        self.client.step = step.value
        self.data.update(values)
        self.save()

    def _position(self) -> str:
        if self.client.step == Step.QUESTION:
            return f"{Step.QUESTION}:{self.data.get('q', 1)}"
        return self.client.step

    def reset(self, step: Step = Step.HOME) -> None:
        self.client.step = step.value
        self.data = {}
        self.save()

    def screen(self, text: str, rows: list[list[Button]], *, urgent: bool = False) -> Screen:
        return Screen(text, [r for r in rows if r] + [self.exit_row()], urgent=urgent)

    def notice(self, key: str, *, urgent: bool = False, **values: Any) -> Screen:
        """A message with no menu of its own: quick exit is one tap away on it too."""
        return self.screen(self.t(key, **values), [], urgent=urgent)

    def _code_word_row(self) -> list[Button]:
        """The offer to choose a code word, until she has one (always skippable), and to
        whoever writes after her quick exit as to anyone new."""
        return [self.b("btn_code_word", cb.ChooseCodeWord())] if self.client.offer_code_word \
            else []

    # ------------------------------------------------------------------ rendering

    def render(self) -> Screen:
        """The screen of the step she is at (after a restart, an expired button, bad input)."""
        return RENDERERS.get(self.client.step, Flow._render_home)(self)

    def offers(self, data: cb.Callback) -> bool:
        """Whether her current menu has a button saying `data`."""
        encoded = cb.encode(data)
        return any(b.data == encoded for row in self.render().buttons for b in row)

    def _language_row(self) -> list[Button]:
        return [Button.of(LANGUAGE_NAMES[code], cb.Language(code)) for code in LANGUAGES]

    def _render_home(self) -> Screen:
        return self.screen(self.t("home"), [
            [self.b("btn_danger_yes", cb.Danger("yes"))],
            [self.b("btn_danger_no", cb.Danger("no"))],
            [self.b("btn_info", cb.Library())],
            self._language_row(),
        ])

    def _render_not_now(self) -> Screen:
        return self.screen(self.t("not_now"), [[self.b("btn_home", cb.Home())]])

    def emergency_screen(self, signal: danger.Signal = danger.Signal.DANGER) -> Screen:
        key = "emergency_self_harm" if signal is danger.Signal.SELF_HARM else "emergency"
        return self.screen(self.t(key), [
            [self.b("btn_write_yes", cb.Write("yes"))],
            [self.b("btn_write_no", cb.Write("no"))],
        ], urgent=True)

    def _render_emergency(self) -> Screen:
        signal = danger.Signal(self.data.get("signal", danger.Signal.DANGER))
        return self.emergency_screen(signal)

    def _render_safety(self) -> Screen:
        return self.screen(self.t("safety_q"), [
            [self.b("btn_safe_shared", cb.Safety("shared"))],
            [self.b("btn_safe_private", cb.Safety("private"))],
            [self.b("btn_skip", cb.Skip())],
        ])

    def _render_t_for(self) -> Screen:
        return self.screen(self.t("ask_for"), [
            [self.b("for_me", cb.ForWhom("me")), self.b("for_child", cb.ForWhom("child"))],
            [self.b("for_other", cb.ForWhom("other"))],
            self.nav_row(),
        ])

    def _render_t_cat(self) -> Screen:
        return self.screen(self.t("ask_category"), [
            [self.b("cat_psych", cb.Category("psych")),
             self.b("cat_legal", cb.Category("legal"))],
            [self.b("cat_shelter", cb.Category("shelter")),
             self.b("cat_child", cb.Category("child"))],
            [self.b("cat_other", cb.Category("other"))],
            self.nav_row(),
        ])

    def _region_rows(self) -> list[list[Button]]:
        buttons = [Button.of(r.name(self.lang), cb.Region(r.code)) for r in self.settings.regions]
        return [buttons[i:i + 2] for i in range(0, len(buttons), 2)]

    def _render_t_region(self) -> Screen:
        return self.screen(self.t("ask_region"), [*self._region_rows(), self.nav_row()])

    def _render_case_region(self) -> Screen:
        return self.screen(self.t("ask_region_after"),
                           [*self._region_rows(), self.nav_row(back=False)])

    def _render_t_screen(self) -> Screen:
        return self.screen(self.t("screen_intro"), [
            [self.b("btn_screen_start", cb.StartScreening())],
            self.nav_row(),
        ])

    def _render_t_q(self) -> Screen:
        number = int(self.data.get("q", 1))
        text = self.t("q_header", number=number, total=len(screening.QUESTIONS)) + "\n\n" + \
            self.t(f"q{number}")
        return self.screen(text, [
            [self.b("btn_yes", cb.Answer(number, yes=True)),
             self.b("btn_no", cb.Answer(number, yes=False))],
            self.nav_row(),
        ])

    def _render_t_contact(self) -> Screen:
        return self.screen(self.t("ask_contact"), [
            [self.b("contact_chat_now", cb.Contact("chat_now"))],
            [self.b("contact_chat_later", cb.Contact("chat_later"))],
            [self.b("contact_call_later", cb.Contact("call_later"))],
            self.nav_row(),
        ])

    def _hours(self) -> Hours:
        return Hours.of(self.settings)

    def _role(self) -> str:
        return case_service.role_for(self.data.get("cat"))

    def when_label(self, moment: datetime) -> str:
        """A time as she reads it: "Today 14:00", "Tomorrow 10:00", "Monday 09:00"."""
        return when_label(self.texts, self.lang, moment, now=self.now,
                          tz=self.settings.organization.tz)

    def _render_t_time(self) -> Screen:
        slots = self._hours().slots(self._role(), self.now)
        if not slots:
            return self.screen(self.t("ask_time_none"), [
                [self.b("contact_chat_now", cb.Contact("chat_now"))], self.nav_row()])
        buttons = [Button.of(self.t("slot_in_hours", hours=s.hours) if s.hours
                             else self.when_label(s.when), cb.Time(s.code)) for s in slots]
        text = self.t("ask_time")
        if slots[0].hours is None:
            text += "\n" + self.t("ask_time_earliest", time=self.when_label(slots[0].when))
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        return self.screen(text, [*rows, self.nav_row()])

    def _render_t_phone(self) -> Screen:
        return self.screen(self.t("ask_phone"), [self.nav_row()])

    def _summary(self) -> str:
        d = self.data
        answers = self._answers()
        result, flags = screening.evaluate(answers) if answers else (
            screening.ScreenResult.SKIPPED, [])
        contact = d.get("contact") or "chat_now"
        lines = [
            self.t("summary_line", label=self.t("card_for"),
                   value=self.t(f"for_{d['for']}") if d.get("for") else "—"),
            self.t("summary_line", label=self.t("card_category"),
                   value=self.t(f"cat_{d['cat']}") if d.get("cat") else "—"),
            self.t("summary_line", label=self.t("card_region"),
                   value=self.texts.region_name(self.lang, d.get("region"))),
            self.t("summary_line", label=self.t("card_screen"),
                   value=self.t(f"screen_{result.value}")),
            self.t("summary_line", label=self.t("card_contact"),
                   value=self.t(f"contact_{contact}") + self._when_text()),
        ]
        return "\n".join(lines)

    def _when_text(self) -> str:
        when = self.data.get("when")
        if not when or self.data.get("contact") in (None, "chat_now"):
            return ""
        local = local_time(datetime.fromisoformat(when), self.settings.organization.tz)
        return f", {local.strftime('%d.%m %H:%M')}"

    def _render_t_confirm(self) -> Screen:
        text = self.t("confirm_title") + "\n\n" + self._summary() + "\n\n" + self.t("confirm_ask")
        return self.screen(text, [
            [self.b("btn_send", cb.Send())],
            [self.b("btn_back", cb.Back())],
        ])

    def _render_waiting(self) -> Screen:
        return self.screen(self.t("waiting"), [
            [self.b("btn_info", cb.Library())],
            self._code_word_row(),
            [self.b("btn_end", cb.End())],
        ])

    def _render_code_word(self) -> Screen:
        return self.screen(self.t("code_word_ask"), [[self.b("btn_skip", cb.Skip())]])

    def _render_rate(self) -> Screen:
        return self.screen(self.t("conversation_closed"), rating_rows())

    def _render_library(self) -> Screen:
        rows = [[Button.of(self.texts.resource(self.lang, rid).title, cb.Topic(rid))]
                for rid in self.texts.resource_ids]
        return self.screen(self.t("library"), [*rows, [self.b("btn_home", cb.Home())]])

    def _render_resource(self) -> Screen:
        rid = str(self.data.get("res", ""))
        if rid not in self.texts.resource_ids:
            return self._render_library()
        item = self.texts.resource(self.lang, rid)
        body = item.body
        if rid == "services":
            region = self.data.get("partners_region")
            body += self.partners_text(str(region) if region else None)
        return self.screen(f"<b>{item.title}</b>\n\n{body}", [
            [self.b("btn_library", cb.Library()), self.b("btn_home", cb.Home())],
        ])

    def _render_forget(self) -> Screen:
        return self.screen(self.t("forget_confirm"), [
            [self.b("btn_forget_yes", cb.Forget("yes"))],
            [self.b("btn_forget_no", cb.Forget("no"))],
        ])

    def _render_language(self) -> Screen:
        return self.screen(self.t("choose_language"), [self._language_row()])

    def _render_autodelete(self) -> Screen:
        return self.screen(self.t("autodelete_q"), [
            [self.b("btn_ad_60", cb.AutoDelete(60)), self.b("btn_ad_1440", cb.AutoDelete(1440))],
            [self.b("btn_ad_off", cb.AutoDelete(0))],
        ])

    # ------------------------------------------------------------------ entry points

    def start(self) -> Reply:
        """/start or her first message: the greeting, language choice and danger question."""
        waiting = self.client.step == Step.WAITING
        case_id = self.data.get("case")
        self.reset(Step.HOME)
        if waiting and case_id:
            self.data["case"] = case_id
            self.save()
        return Reply([self._render_home()])

    def help(self) -> Reply:
        return Reply([self.screen(self.t("help"), [[self.b("btn_home", cb.Home())]])])

    def ask_language(self) -> Reply:
        self.go(Step.LANGUAGE)
        return Reply([self._render_language()])

    def ask_forget(self) -> Reply:
        self.go(Step.FORGET)
        return Reply([self._render_forget()])

    def ask_autodelete(self) -> Reply:
        self.go(Step.AUTODELETE)
        return Reply([self._render_autodelete()])

    async def quick_exit(self) -> Reply:
        """Someone may be looking at her phone: delete the conversation, drop whatever was
        in progress, pause her cases (their holders are told), leave one neutral line.
        Whoever writes from here next starts afresh."""
        self.reset(Step.NEW)
        # Whoever writes next is asked again whether the phone is shared, as anyone new is
        # (her auto-delete stays on: it shows nowhere, and it protects her).
        self.client.shared_device = None
        paused = await self._pause_open_cases()
        await mark_exit(self.session, self.client.id, self.now)
        await checkin.cancel_for(self.session, client_id=self.client.id, now=self.now)
        return Reply([Screen(self.t("exit_done"))], quick_exit=True, paused=paused)

    async def _pause_open_cases(self) -> list[case_service.Paused]:
        """Pause every waiting or active case of hers (their holders are to be told)."""
        return [await case_service.pause(self.session, case=case, texts=self.texts,
                                         now=self.now)
                for case in await case_service.open_cases_of(self.session, self.client.id)]

    @staticmethod
    def relay(case: case_service.OpenCase) -> Reply:
        """Her message, to her specialist in the conversation `case`."""
        to = None if case.owner_id is None or case.owner_chat_enc is None \
            else (case.owner_id, case.owner_chat_enc)
        return Reply(relay_case_id=case.id, relay_to=to)

    def expired(self) -> Reply:
        """A button from an older menu: say so kindly and show the current one."""
        return Reply([self.render()], toast=self.t("expired"))

    async def on_text(self, text: str) -> Reply:
        """Free text: her code word (chosen, or typed to come back), the danger check, then
        whatever her step expects."""
        if self.client.step == Step.CODE_WORD:
            return await self._choose_code_word(text)
        brief = await case_service.open_case_brief(self.session, self.client.id)
        in_conversation = brief is not None and brief.status == CaseStatus.ACTIVE
        word = code_word.normalise(text) if self.client.has_code_word else None
        if word is not None and not in_conversation:
            back = await self._come_back(word)
            if back is not None:
                return back
        signal = danger.check(text)
        if brief is not None and in_conversation:
            # In her own conversation her word is kept back, answered as a relayed message
            # is (not at all). In one begun after her quick exit, by whoever holds her
            # phone, it is not compared at all: a guess there would count against nothing.
            if await self._kept_back(word):
                return Reply(kept_back=True)
            # She is talking with her specialist: everything she writes goes there.
            return self.relay(brief)
        case = None if brief is None else \
            await case_service.open_case_of(self.session, self.client.id)
        waiting = case is not None and case.status == CaseStatus.WAITING
        if waiting and await self._kept_back(word):
            # Her code word typed while she waits: answered as any message, copied to no one.
            return Reply([self.notice("waiting_text")])
        if signal is not danger.Signal.NONE:
            reply = await self._danger_interrupt(signal, case)
            if waiting and case is not None:
                reply.hold_for_case = case.id
            return reply
        if len(text) > self.settings.limits.max_text_length:
            return Reply([Screen(self.t("too_long", limit=self.settings.limits.max_text_length)),
                          self.render()])
        step = self.client.step
        if step == Step.PHONE:
            phone = normalise_kg_phone(text)
            if phone is None:
                return Reply([Screen(self.t("phone_invalid")), self._render_t_phone()])
            self.data["phone"] = self.crypto.encrypt(phone).decode("ascii")
            self.go(Step.CONFIRM)
            return Reply([self._render_t_confirm()])
        if step == Step.NEW:
            return self.start()
        if case is not None and case.status == CaseStatus.WAITING:
            return Reply([self.notice("waiting_text")], hold_for_case=case.id)
        return Reply([Screen(self.t("use_buttons")), self.render()])

    async def _choose_code_word(self, text: str) -> Reply:
        signal = danger.check(text)
        if signal is not danger.Signal.NONE:
            return await self._danger_interrupt(
                signal, await case_service.open_case_of(self.session, self.client.id))
        word = code_word.normalise(text)
        if word is None:
            return Reply([self.notice("code_word_invalid"), self._render_code_word()],
                         delete_incoming=True)
        await code_word.choose(self.session, crypto=self.crypto, client_id=self.client.id,
                               word=word, now=self.now)
        self.client.has_code_word = True
        self.client.offer_code_word = False
        log.info("a client chose a code word")
        self.back_or_home()
        return Reply([self.notice("code_word_saved"), self.render()], delete_incoming=True)

    async def _is_her_code_word(self, word: str) -> bool:
        current = await code_word.state(self.session, self.client.id)
        # A locked word is not compared at all: no answer tells a guess from the word.
        return current.usable and current.stored is not None and \
            self.crypto.code_word_matches(self.client.id, word, current.stored)

    async def _come_back(self, word: str) -> Reply | None:
        """Her code word (normalised) typed after quick exit, outside a conversation (short
        messages in one are not tries): she is back where she was. Anything else (or a
        word after too many wrong tries) gets the answer anyone new would get."""
        current = await code_word.state(self.session, self.client.id)
        case = await case_service.resumable_case_of(self.session, self.client.id,
                                                    word_set_at=current.set_at)
        if case is None:
            return None
        today = local_time(self.now, self.settings.organization.tz).date()
        if not await code_word.attempt(self.session, crypto=self.crypto,
                                       client_id=self.client.id, word=word, today=today,
                                       paused_at=case.paused_at):
            log.info("a wrong code word for case %d", case.id)
            return None
        # Whatever was asked from here meanwhile was not hers: it is paused in turn.
        paused = await self._pause_open_cases()
        await mark_back(self.session, self.client.id)
        resumed = await case_service.resume(self.session, case=case, settings=self.settings,
                                            texts=self.texts, now=self.now)
        self.reset(Step.WAITING)
        self.data["case"] = case.id
        self.save()
        text = self.t("back_in_conversation", role=self.t(f"role_{resumed.role}")) \
            if resumed.active else self.t("back_waiting", number=case.id)
        screen = self.screen(text, [[self.b("btn_info", cb.Library())],
                                    [self.b("btn_end", cb.End())]])
        return Reply([screen], delete_incoming=True, resumed=resumed, paused=paused)

    async def on_contact_shared(self, phone_number: str) -> Reply:
        """She shared a contact card: use it as the callback number where one is asked."""
        if self.client.step != Step.PHONE:
            return Reply([Screen(self.t("use_buttons")), self.render()])
        return await self.on_text(phone_number)

    async def _danger_interrupt(self, signal: danger.Signal, case: Case | None) -> Reply:
        if case is not None and case.status == CaseStatus.WAITING:
            # The numbers at once; her request goes first only if she says so (a word can
            # be a false alarm, and an emergency takes a specialist from someone else).
            if case.urgency == Urgency.EMERGENCY:
                return Reply([self.notice("emergency_numbers", urgent=True)])
            text = self.t("emergency_numbers") + "\n\n" + self.t("raise_offer")
            return Reply([self.screen(text, [[self.b("btn_raise", cb.RaiseUrgency())]],
                                      urgent=True)])
        self.go(Step.EMERGENCY, signal=signal.value)
        return Reply([self.emergency_screen(signal)])

    async def on_button(self, data: cb.Callback | None, *, on_menu: bool) -> Reply:
        """A tap on a button of hers (`data` None: data no button of ours carries). One
        offered anywhere (`Action.anywhere`) counts whatever her step; any other only if
        it is on her current menu and that menu is the message tapped (`on_menu`); else,
        or if it no longer applies, the "expired" answer and her current menu."""
        action = ACTIONS.get(type(data)) if data is not None else None
        if data is None or action is None:
            return self.expired()  # forged, or a staff button in her chat
        if not action.anywhere(self.client.step) and not (on_menu and self.offers(data)):
            return self.expired()
        try:
            return await action.handle(self, data)
        except InvalidButton:
            return self.expired()

    # ------------------------------------------------------------------ buttons

    async def _on_raise(self, _: cb.RaiseUrgency) -> Reply:
        """She says she is in danger now: her waiting request goes first."""
        case = await case_service.open_case_of(self.session, self.client.id)
        if case is None or case.status != CaseStatus.WAITING:
            raise InvalidButton("raise")
        if case.urgency != Urgency.EMERGENCY:
            case.urgency = Urgency.EMERGENCY
            log.info("case %d raised to emergency by the client", case.id)
        return Reply([self.notice("raised_done", urgent=True)])

    async def _on_ci(self, tap: cb.CheckInTime) -> Reply:
        """Her answer to the offer of a check-in: a time, or no."""
        case = await self._her_closed_case(tap.case_id)
        if tap.slot != "no" and tap.slot not in checkin.SLOTS:
            raise InvalidButton("ci")
        if tap.slot == "no":
            return Reply([self.notice("checkin_declined")], edit=True)
        at = checkin.when(tap.slot, now=self.now, settings=self.settings)
        await checkin.schedule(self.session, case=case, at=at)
        return Reply([self.notice("checkin_set", time=self.when_label(at))], edit=True)

    async def _on_ck(self, tap: cb.CheckInReply) -> Reply:
        """Her answer to the check-in itself: all right, or she would like to talk."""
        case = await self._her_closed_case(tap.case_id)
        if not await checkin.was_sent(self.session, case_id=case.id):
            raise InvalidButton("ck")
        if tap.answer == "ok":
            return Reply([self.notice("checkin_ok")], edit=True)
        existing = await case_service.open_case_brief(self.session, self.client.id)
        if existing is not None:
            return Reply([self.notice("request_open", number=existing.id)], edit=True)
        new = await case_service.create_case(
            self.session, client=self.client, telegram_id=self.telegram_id, crypto=self.crypto,
            settings=self.settings, now=self.now, urgency=Urgency.STANDARD,
            category=case.category, for_whom=case.for_whom, region=case.region,
            after_exit=await case_service.left_by_exit_of(self.session, self.client.id))
        held = await self._hold(new)
        self.go(Step.WAITING, remember=False, case=new.id)
        return Reply([self._waiting_screen(new, held)], held=held, edit=True)

    async def is_her_code_word_text(self, text: str) -> bool:
        """Whether `text` is her code word (never compared after her exit, as elsewhere)."""
        return await self._kept_back(
            code_word.normalise(text) if self.client.has_code_word else None)

    async def _kept_back(self, word: str | None) -> bool:
        """Her code word typed where a guess counts for nothing (her own conversation, her
        waiting request): kept back, never compared in a conversation begun after her
        exit, where whoever holds her phone could guess at will."""
        return word is not None and not self.client.offer_code_word and \
            await self._is_her_code_word(word)

    async def _her_closed_case(self, case_id: int) -> Case:
        case = await self.session.get(Case, case_id)
        if case is None or case.client_id != self.client.id or not checkin.allowed(case):
            raise InvalidButton("ci")
        record = await self.session.get(Client, self.client.id)
        if not checkin.may_reach(case, record):
            # Whoever holds her phone after her quick exit cannot accept or answer one.
            raise InvalidButton("ci")
        return case

    async def _on_exit(self, _: cb.Exit) -> Reply:
        return await self.quick_exit()

    async def _on_codeword(self, _: cb.ChooseCodeWord) -> Reply:
        self.go(Step.CODE_WORD)
        return Reply([self._render_code_word()], edit=True)

    async def _on_home(self, _: cb.Home) -> Reply:
        reply = self.start()
        reply.edit = True
        return reply

    async def _on_lang(self, tap: cb.Language) -> Reply:
        self.client.language = tap.code
        if self.client.step == Step.LANGUAGE:
            self.back_or_home()
        return Reply([self.render()], edit=True)

    def back_or_home(self) -> None:
        history = list(self.data.get("hist", []))
        if not history:
            self.reset(Step.HOME)
            return
        previous = history.pop()
        self.data["hist"] = history
        if previous.startswith(f"{Step.QUESTION}:"):
            self.client.step = Step.QUESTION.value
            self.data["q"] = int(previous.split(":")[1])
        else:
            self.client.step = previous
        self.save()

    async def _on_back(self, _: cb.Back) -> Reply:
        self.back_or_home()
        return Reply([self.render()], edit=True)

    async def _on_danger(self, tap: cb.Danger) -> Reply:
        if tap.answer == "yes":
            self.go(Step.EMERGENCY, signal=danger.Signal.DANGER.value)
            return Reply([self.emergency_screen()])
        return self._begin_triage()

    def _begin_triage(self) -> Reply:
        for key in ("for", "cat", "region", "answers", "q", "contact", "when", "phone"):
            self.data.pop(key, None)
        if self.client.shared_device is None:
            self.go(Step.SAFETY, next=Step.FOR)
            return Reply([self._render_safety()], edit=True)
        self.go(Step.FOR)
        return Reply([self._render_t_for()], edit=True)

    async def _on_info(self, _: cb.Library) -> Reply:
        self.go(Step.LIBRARY)
        return Reply([self._render_library()], edit=True)

    async def _on_res(self, tap: cb.Topic) -> Reply:
        rid = tap.topic
        if rid not in self.texts.resource_ids:
            raise InvalidButton("res")
        region = self.data.get("region")
        if rid == "services" and not region:
            region = await case_service.last_region(self.session, self.client.id)
        self.go(Step.RESOURCE, res=rid, partners_region=region)
        return Reply([self._render_resource()], edit=True)

    def partners_text(self, region: str | None) -> str:
        """The partner centers serving her region (all, if it is not known), as lines to
        add under a text; empty when the configuration names none."""
        partners = self.settings.partners_for(region)
        if not partners:
            return ""
        lines = [self.t("partners_title")]
        for p in partners:
            where = "" if region else ", ".join(
                self.texts.region_name(self.lang, code) for code in p.regions)
            key = "partner_line_hours" if p.hours else "partner_line"
            lines.append(self.t(key, name=p.name + (f" ({where})" if where else ""),
                                phone=p.phone, hours=p.hours))
        return "\n\n" + "\n".join(lines)

    async def _on_write(self, tap: cb.Write) -> Reply:
        if tap.answer == "no":
            self.go(Step.NOT_NOW)
            return Reply([self._render_not_now()])
        existing = await case_service.open_case_of(self.session, self.client.id)
        if existing is not None:
            if existing.status == CaseStatus.WAITING:
                existing.urgency = Urgency.EMERGENCY
            self.go(Step.WAITING, remember=False, case=existing.id)
            return Reply([self.notice("already_waiting")])
        case = await case_service.create_case(
            self.session, client=self.client, telegram_id=self.telegram_id, crypto=self.crypto,
            settings=self.settings, now=self.now, urgency=Urgency.EMERGENCY,
            after_exit=await case_service.left_by_exit_of(self.session, self.client.id),
        )
        held = await self._hold(case)
        screens = [self._waiting_screen(case, held)]
        if self.client.shared_device is None:
            self.go(Step.SAFETY, remember=False, next=Step.CASE_REGION, case=case.id)
            screens.append(self._render_safety())
        else:
            self.go(Step.CASE_REGION, remember=False, case=case.id)
            screens.append(self._render_case_region())
        return Reply(screens, held=held)

    async def _hold(self, case: Case) -> case_service.Held | None:
        """The first step of routing a case created in this transaction (the offer itself
        goes out once her answer is on its way)."""
        return await case_service.hold(self.session, case=case, settings=self.settings,
                                       now=self.now)

    def _waiting_screen(self, case: Case, held: case_service.Held | None) -> Screen:
        """What she sees once her request is sent: quick exit, and the offer of a code word."""
        rows = [self._code_word_row()]
        if case.contact != "chat_now" and case.contact_at is not None:
            local = local_time(aware(case.contact_at), self.settings.organization.tz)
            key = "case_sent_call" if case.contact == "call_later" else "case_sent_later"
            return self.screen(self.t(key, number=case.id, time=local.strftime("%d.%m %H:%M")),
                               rows)
        if held is not None and held.nobody_on_duty:
            text = self.t("nobody_on_duty", number=case.id)
            nxt = self._hours().next_on_duty(case_service.role_for(case.category), self.now)
            if nxt is not None and nxt > self.now:
                text += "\n" + self.t("next_shift", time=self.when_label(nxt))
            if case.region:
                text += self.partners_text(case.region)
            return self.screen(text, rows, urgent=True)
        return self.screen(self.t("case_sent_now", number=case.id), rows)

    async def _on_safe(self, tap: cb.Safety) -> Reply:
        screens: list[Screen] = []
        if tap.answer == "shared":
            self.client.shared_device = True
            self.client.auto_delete_minutes = DEFAULT_AUTODELETE
            # After "I'm in danger", two lines, not eight: the rest is in the library.
            short = self.data.get("next") == Step.CASE_REGION
            screens.append(Screen(self.t("safety_shared_short" if short else "safety_shared")))
        else:
            self.client.shared_device = False
        return self._after_safety(screens)

    def _after_safety(self, screens: list[Screen]) -> Reply:
        following = self.data.pop("next", Step.FOR)
        if following == Step.CASE_REGION:
            self.go(Step.CASE_REGION, remember=False)
            screens.append(self._render_case_region())
        else:
            self.go(Step.FOR, remember=False)
            screens.append(self._render_t_for())
        # The tips must stay readable: the next menu comes as a new message after them.
        return Reply(screens, edit=not screens[:-1])

    async def _on_skip(self, _: cb.Skip) -> Reply:
        step = self.client.step
        if step == Step.SAFETY:
            return self._after_safety([])
        if step == Step.FOR:
            self.data.pop("for", None)
            self.go(Step.CATEGORY)
        elif step == Step.CATEGORY:
            self.data.pop("cat", None)
            self.go(Step.REGION)
        elif step == Step.REGION:
            self.data.pop("region", None)
            self.go(Step.SCREEN)
        elif step == Step.SCREEN:
            self.data.pop("answers", None)
            self.go(Step.CONTACT)
        elif step == Step.QUESTION:
            return self._answer(None)
        elif step in (Step.CONTACT, Step.TIME, Step.PHONE):
            # Skipping how to reach her means: here in this chat, as soon as someone can.
            self.data["contact"] = "chat_now"
            self.data.pop("when", None)
            self.data.pop("phone", None)
            self.go(Step.CONFIRM)
        elif step == Step.CASE_REGION:
            self.go(Step.WAITING, remember=False)
            return Reply([self._region_thanks()], edit=True)
        elif step == Step.CODE_WORD:
            self.back_or_home()
        else:
            raise InvalidButton("skip")
        return Reply([self.render()], edit=True)

    async def _on_for(self, tap: cb.ForWhom) -> Reply:
        if tap.whom not in case_service.FOR_WHOM:
            raise InvalidButton("for")
        self.data["for"] = tap.whom
        self.go(Step.CATEGORY)
        return Reply([self.render()], edit=True)

    async def _on_cat(self, tap: cb.Category) -> Reply:
        if tap.code not in case_service.CATEGORIES:
            raise InvalidButton("cat")
        self.go(Step.REGION, cat=tap.code)
        return Reply([self.render()], edit=True)

    async def _on_reg(self, tap: cb.Region) -> Reply:
        code = tap.code
        if self.settings.region(code) is None:
            raise InvalidButton("reg")
        if self.client.step == Step.CASE_REGION:
            case = await self._current_case()
            if case is not None:
                await case_service.update_region(self.session, case=case, region=code)
            self.go(Step.WAITING, remember=False)
            return Reply([self._region_thanks(code)], edit=True)
        self.go(Step.SCREEN, region=code)
        return Reply([self.render()], edit=True)

    def _region_thanks(self, region: str | None = None) -> Screen:
        text = self.t("region_thanks") + (self.partners_text(region) if region else "")
        return self.screen(text, [self._code_word_row()])

    async def _current_case(self) -> Case | None:
        case_id = self.data.get("case")
        if not isinstance(case_id, int):
            return None
        case = await self.session.get(Case, case_id)
        if case is None or case.client_id != self.client.id:
            return None
        return case

    async def _on_scr(self, _: cb.StartScreening) -> Reply:
        self.data["answers"] = {}
        self.go(Step.QUESTION, q=1)
        return Reply([self.render()], edit=True)

    def _answers(self) -> dict[int, bool | None]:
        raw = self.data.get("answers") or {}
        return {int(k): v for k, v in raw.items() if small_number(str(k), 2) in
                screening.QUESTIONS}

    def _answer(self, value: bool | None) -> Reply:
        number = int(self.data.get("q", 1))
        answers = dict(self.data.get("answers") or {})
        answers[str(number)] = value
        self.data["answers"] = answers
        if number < len(screening.QUESTIONS):
            self.go(Step.QUESTION, q=number + 1)
        else:
            self.go(Step.CONTACT)
        return Reply([self.render()], edit=True)

    async def _on_q(self, tap: cb.Answer) -> Reply:
        if tap.question != int(self.data.get("q", 0)):
            return self.expired()
        return self._answer(tap.yes)

    async def _on_ct(self, tap: cb.Contact) -> Reply:
        if tap.way not in case_service.CONTACTS:
            raise InvalidButton("ct")
        self.data["contact"] = tap.way
        if tap.way == "chat_now":
            self.data.pop("when", None)
            self.data.pop("phone", None)
            self.go(Step.CONFIRM)
        else:
            self.go(Step.TIME)
        return Reply([self.render()], edit=True)

    async def _on_tm(self, tap: cb.Time) -> Reply:
        slot = self._hours().slot(self._role(), self.now, tap.slot)
        if slot is None:  # an older screen's time, no longer one a specialist can keep
            return self.expired()
        self.data["when"] = slot.when.astimezone(self.now.tzinfo).isoformat()  # stored as UTC
        if self.data.get("contact") == "call_later":
            self.go(Step.PHONE)
        else:
            self.go(Step.CONFIRM)
        return Reply([self.render()], edit=True)

    async def _on_ok(self, _: cb.Send) -> Reply:
        if self.client.step != Step.CONFIRM:
            return self.expired()
        existing = await case_service.open_case_brief(self.session, self.client.id)
        if existing is not None:
            self.go(Step.WAITING, remember=False, case=existing.id)
            return Reply([self.notice("request_open", number=existing.id)], edit=True)
        answers = self._answers()
        result, flags = screening.evaluate(answers) if answers else (
            screening.ScreenResult.SKIPPED, [])
        contact = str(self.data.get("contact") or "chat_now")
        when = self.data.get("when")
        phone = self.data.get("phone")
        if contact == "call_later" and not phone:
            contact = "chat_later"
        case = await case_service.create_case(
            self.session, client=self.client, telegram_id=self.telegram_id, crypto=self.crypto,
            settings=self.settings, now=self.now,
            urgency=Urgency.HIGH if result is screening.ScreenResult.SCREENED_IN
            else Urgency.STANDARD,
            category=self.data.get("cat"), for_whom=self.data.get("for"),
            region=self.data.get("region"),
            screen=None if result is screening.ScreenResult.SKIPPED else result.value,
            flags=screening.flags_to_text(flags) or None, contact=contact,
            contact_at=datetime.fromisoformat(when) if when and contact != "chat_now" else None,
            phone_enc=phone.encode("ascii") if phone and contact == "call_later" else None,
            after_exit=await case_service.left_by_exit_of(self.session, self.client.id),
        )
        held = await self._hold(case)
        self.reset(Step.WAITING)
        self.data["case"] = case.id
        self.save()
        screens = [self._waiting_screen(case, held)]
        if result is screening.ScreenResult.SCREENED_IN:
            screens.insert(0, self.notice("screened_in_note", urgent=True))
        return Reply(screens, edit=True, held=held)

    async def _on_end(self, _: cb.End) -> Reply:
        """She ends the conversation (or withdraws a request nobody has taken yet)."""
        case = await case_service.open_case_of(self.session, self.client.id)
        if case is None:
            self.reset(Step.HOME)
            return Reply([self._render_home()], edit=True)
        outcome = await case_service.end_by_client(
            self.session, case=case, texts=self.texts, now=self.now)
        if case.owner_id is not None:
            self.reset(Step.RATE)
            self.data["case"] = case.id
            self.save()
            return Reply([self._render_rate()], edit=True, route=outcome)
        self.reset(Step.HOME)
        return Reply([Screen(self.t("request_withdrawn")), self._render_home()], route=outcome)

    async def _on_rate(self, tap: cb.Rate) -> Reply:
        case_id = self.data.get("case")
        if isinstance(case_id, int):
            await case_service.rate(self.session, case_id=case_id, client_id=self.client.id,
                                    rating=tap.stars)
        self.reset(Step.HOME)
        return Reply([self.screen(self.t("rate_thanks"), [[self.b("btn_home", cb.Home())]])],
                     edit=True)

    async def _on_fg(self, tap: cb.Forget) -> Reply:
        if tap.answer == "yes":
            self.reset(Step.NEW)
            return Reply([Screen(self.t("forget_done"))], quick_exit=True, forget=True)
        self.back_or_home()
        return Reply([self.render()], edit=True)

    async def _on_ad(self, tap: cb.AutoDelete) -> Reply:
        if tap.minutes not in AUTODELETE_CHOICES:
            raise InvalidButton("ad")
        minutes = AUTODELETE_CHOICES[tap.minutes]
        self.client.auto_delete_minutes = minutes
        self.back_or_home()
        note = self.t("autodelete_off") if minutes is None else self.t(
            "autodelete_on", hours=minutes // 60)
        return Reply([Screen(note), self.render()])


class InvalidButton(Exception):
    """Callback data that no current menu offers (forged, or from an old version)."""




def rating_rows() -> list[list[Button]]:
    """One to five stars: her menu once a conversation is closed (`Step.RATE`)."""
    stars = [Button.of("⭐" * n, cb.Rate(n)) for n in range(1, 6)]
    return [stars[:3], stars[3:]]


# Her step written as `bot.domain.clients` writes her record: a Core UPDATE.
_ASK_FOR_RATING = (update(Client)
                   .where(Client.id == bindparam("client_id"),
                          Client.step == Step.WAITING.value)
                   .values(step=Step.RATE.value, step_data=bindparam("case")))


async def ask_for_rating(session: AsyncSession, *, client_id: int, case_id: int) -> None:
    """Staff closed `case_id`: if she was waiting in it, her menu becomes the rating of it
    (the stars of `rating_rows`, sent to her by the caller). Staff's code changes her step
    only through here."""
    await db.run(session, _ASK_FOR_RATING, {"client_id": client_id, "case": {"case": case_id}})


# ---------------------------------------------------------------------- the table

# Each step's screen: what `Flow.render` shows her there.
RENDERERS: Mapping[str, Callable[[Flow], Screen]] = {
    Step.NEW: Flow._render_home,
    Step.HOME: Flow._render_home,
    Step.EMERGENCY: Flow._render_emergency,
    Step.NOT_NOW: Flow._render_not_now,
    Step.SAFETY: Flow._render_safety,
    Step.FOR: Flow._render_t_for,
    Step.CATEGORY: Flow._render_t_cat,
    Step.REGION: Flow._render_t_region,
    Step.SCREEN: Flow._render_t_screen,
    Step.QUESTION: Flow._render_t_q,
    Step.CONTACT: Flow._render_t_contact,
    Step.TIME: Flow._render_t_time,
    Step.PHONE: Flow._render_t_phone,
    Step.CONFIRM: Flow._render_t_confirm,
    Step.WAITING: Flow._render_waiting,
    Step.CASE_REGION: Flow._render_case_region,
    Step.CODE_WORD: Flow._render_code_word,
    Step.RATE: Flow._render_rate,
    Step.LIBRARY: Flow._render_library,
    Step.RESOURCE: Flow._render_resource,
    Step.FORGET: Flow._render_forget,
    Step.LANGUAGE: Flow._render_language,
    Step.AUTODELETE: Flow._render_autodelete,
}

T = TypeVar("T", bound=cb.Callback)


@dataclass(frozen=True)
class Action(Generic[T]):
    """What a tap on one kind of button does (`handle`), and where it counts."""

    kind: type[T]
    handle: Callable[[Flow, T], Awaitable[Reply]]
    # Offered on messages other than her menu (notices), whatever her step: it counts
    # without being on her current menu, except at the steps `menu_only_at`.
    offered_anywhere: bool = False
    menu_only_at: frozenset[str] = frozenset()

    def anywhere(self, step: str) -> bool:
        return self.offered_anywhere and step not in self.menu_only_at


_ACTIONS: tuple[Action[Any], ...] = (
    # Offered anywhere: never "expired" for not being on her menu (a "raise" with no
    # waiting request, or a check-in that no longer applies, is: `InvalidButton`).
    Action(cb.Exit, Flow._on_exit, offered_anywhere=True),  # on every message she gets
    # On the notice that a specialist joined her; in its own step, only Skip is offered.
    Action(cb.ChooseCodeWord, Flow._on_codeword, offered_anywhere=True,
           menu_only_at=frozenset({Step.CODE_WORD})),
    Action(cb.RaiseUrgency, Flow._on_raise, offered_anywhere=True),  # the numbers, waiting
    Action(cb.CheckInTime, Flow._on_ci, offered_anywhere=True),  # the offer of a check-in
    Action(cb.CheckInReply, Flow._on_ck, offered_anywhere=True),  # the check-in itself
    # On her current menu only.
    Action(cb.Danger, Flow._on_danger),
    Action(cb.Write, Flow._on_write),
    Action(cb.Home, Flow._on_home),
    Action(cb.Language, Flow._on_lang),
    Action(cb.Library, Flow._on_info),
    Action(cb.Topic, Flow._on_res),
    Action(cb.Safety, Flow._on_safe),
    Action(cb.Back, Flow._on_back),
    Action(cb.Skip, Flow._on_skip),
    Action(cb.ForWhom, Flow._on_for),
    Action(cb.Category, Flow._on_cat),
    Action(cb.Region, Flow._on_reg),
    Action(cb.StartScreening, Flow._on_scr),
    Action(cb.Answer, Flow._on_q),
    Action(cb.Contact, Flow._on_ct),
    Action(cb.Time, Flow._on_tm),
    Action(cb.Send, Flow._on_ok),
    Action(cb.End, Flow._on_end),
    Action(cb.Rate, Flow._on_rate),
    Action(cb.Forget, Flow._on_fg),
    Action(cb.AutoDelete, Flow._on_ad),
)
# Each kind of the client's buttons, to what a tap on it does.
ACTIONS: Mapping[type[cb.Callback], Action[Any]] = {a.kind: a for a in _ACTIONS}

assert set(RENDERERS) == STEPS and len(ACTIONS) == len(_ACTIONS)
