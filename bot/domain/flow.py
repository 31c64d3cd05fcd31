"""The client's journey as a state machine kept in the database (`Client.step`/`step_data`).

Danger first: the first screen asks whether she is in danger now; the emergency numbers
come in one message the moment she says yes, before anything is asked. The triage (for
whom, kind of help, region, the danger screen, how to reach her) can be skipped and gone
back from at every step; nothing is required but her consent to be contacted.

Everything here is free of Telegram types: a `Reply` says what to show, the handler shows it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import aware
from bot.core.config import LANGUAGES, Settings
from bot.core.crypto import Crypto
from bot.core.i18n import LANGUAGE_NAMES, Texts
from bot.domain import cases as case_service
from bot.domain import checkin, code_word, danger, screening
from bot.domain.clients import ClientRecord, mark_back, mark_exit
from bot.domain.hours import Hours, when_label
from bot.domain.phone import normalise_kg_phone
from bot.domain.screens import Button, Screen, small_number
from bot.domain.staff import local_time
from models import Case, CaseStatus, Client, Urgency

log = logging.getLogger(__name__)

# Steps of the conversation.
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

STEPS = {NEW, HOME, EMERGENCY, SAFETY, FOR, CATEGORY, REGION, SCREEN, QUESTION, CONTACT, TIME,
         PHONE, CONFIRM, WAITING, LIBRARY, RESOURCE, CASE_REGION, FORGET, LANGUAGE, AUTODELETE,
         NOT_NOW, RATE, CODE_WORD}
TRIAGE_ORDER = [FOR, CATEGORY, REGION, SCREEN, QUESTION, CONTACT, TIME, PHONE, CONFIRM]
SLOT_CODE = re.compile(r"r\d|a\d{12}")
AUTODELETE_CHOICES = {"60": 60, "1440": 1440, "0": None}
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

    def b(self, key: str, action: str) -> Button:
        return Button(self.t(key), f"c:{action}")

    def exit_row(self) -> list[Button]:
        return [self.b("btn_exit", "exit")]

    def nav_row(self, back: bool = True, skip: bool = True) -> list[Button]:
        row = []
        if back:
            row.append(self.b("btn_back", "back"))
        if skip:
            row.append(self.b("btn_skip", "skip"))
        return row

    def save(self) -> None:
        self.client.step_data = dict(self.data)

    def go(self, step: str, *, remember: bool = True, **values: Any) -> None:
        """Move to `step`, remembering where she was so Back can return."""
        if remember and self.client.step in STEPS - {NEW, WAITING}:
            history = list(self.data.get("hist", []))
            history.append(self._position())
            self.data["hist"] = history[-30:]
        self.client.step = step
        self.data.update(values)
        self.save()

    def _position(self) -> str:
        if self.client.step == QUESTION:
            return f"{QUESTION}:{self.data.get('q', 1)}"
        return self.client.step

    def reset(self, step: str = HOME) -> None:
        self.client.step = step
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
        return [self.b("btn_code_word", "codeword")] if self.client.offer_code_word else []

    # ------------------------------------------------------------------ rendering

    def render(self) -> Screen:
        """The screen of the step she is at (after a restart, an expired button, bad input)."""
        step = self.client.step
        renderer = getattr(self, f"_render_{step}", None)
        if renderer is None:
            return self._render_home()
        result: Screen = renderer()
        return result

    def _language_row(self) -> list[Button]:
        return [Button(LANGUAGE_NAMES[code], f"c:lang:{code}") for code in LANGUAGES]

    def _render_new(self) -> Screen:
        return self._render_home()

    def _render_home(self) -> Screen:
        return self.screen(self.t("home"), [
            [self.b("btn_danger_yes", "danger:yes")],
            [self.b("btn_danger_no", "danger:no")],
            [self.b("btn_info", "info")],
            self._language_row(),
        ])

    def _render_not_now(self) -> Screen:
        return self.screen(self.t("not_now"), [[self.b("btn_home", "home")]])

    def emergency_screen(self, signal: danger.Signal = danger.Signal.DANGER) -> Screen:
        key = "emergency_self_harm" if signal is danger.Signal.SELF_HARM else "emergency"
        return self.screen(self.t(key), [
            [self.b("btn_write_yes", "write:yes")],
            [self.b("btn_write_no", "write:no")],
        ], urgent=True)

    def _render_emergency(self) -> Screen:
        signal = danger.Signal(self.data.get("signal", danger.Signal.DANGER))
        return self.emergency_screen(signal)

    def _render_safety(self) -> Screen:
        return self.screen(self.t("safety_q"), [
            [self.b("btn_safe_shared", "safe:shared")],
            [self.b("btn_safe_private", "safe:private")],
            [self.b("btn_skip", "skip")],
        ])

    def _render_t_for(self) -> Screen:
        return self.screen(self.t("ask_for"), [
            [self.b("for_me", "for:me"), self.b("for_child", "for:child")],
            [self.b("for_other", "for:other")],
            self.nav_row(),
        ])

    def _render_t_cat(self) -> Screen:
        return self.screen(self.t("ask_category"), [
            [self.b("cat_psych", "cat:psych"), self.b("cat_legal", "cat:legal")],
            [self.b("cat_shelter", "cat:shelter"), self.b("cat_child", "cat:child")],
            [self.b("cat_other", "cat:other")],
            self.nav_row(),
        ])

    def _region_rows(self) -> list[list[Button]]:
        buttons = [Button(r.name(self.lang), f"c:reg:{r.code}") for r in self.settings.regions]
        return [buttons[i:i + 2] for i in range(0, len(buttons), 2)]

    def _render_t_region(self) -> Screen:
        return self.screen(self.t("ask_region"), [*self._region_rows(), self.nav_row()])

    def _render_case_region(self) -> Screen:
        return self.screen(self.t("ask_region_after"),
                           [*self._region_rows(), self.nav_row(back=False)])

    def _render_t_screen(self) -> Screen:
        return self.screen(self.t("screen_intro"), [
            [self.b("btn_screen_start", "scr:start")],
            self.nav_row(),
        ])

    def _render_t_q(self) -> Screen:
        number = int(self.data.get("q", 1))
        text = self.t("q_header", number=number, total=len(screening.QUESTIONS)) + "\n\n" + \
            self.t(f"q{number}")
        return self.screen(text, [
            [self.b("btn_yes", f"q:{number}:y"), self.b("btn_no", f"q:{number}:n")],
            self.nav_row(),
        ])

    def _render_t_contact(self) -> Screen:
        return self.screen(self.t("ask_contact"), [
            [self.b("contact_chat_now", "ct:chat_now")],
            [self.b("contact_chat_later", "ct:chat_later")],
            [self.b("contact_call_later", "ct:call_later")],
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
                [self.b("contact_chat_now", "ct:chat_now")], self.nav_row()])
        buttons = [Button(self.t("slot_in_hours", hours=s.hours) if s.hours
                          else self.when_label(s.when), f"c:tm:{s.code}") for s in slots]
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
            [self.b("btn_send", "ok")],
            [self.b("btn_back", "back")],
        ])

    def _render_waiting(self) -> Screen:
        return self.screen(self.t("waiting"), [
            [self.b("btn_info", "info")],
            self._code_word_row(),
            [self.b("btn_end", "end")],
        ])

    def _render_code_word(self) -> Screen:
        return self.screen(self.t("code_word_ask"), [[self.b("btn_skip", "skip")]])

    def _render_rate(self) -> Screen:
        stars = [Button("⭐" * n, f"c:rate:{n}") for n in range(1, 6)]
        return self.screen(self.t("conversation_closed"), [stars[:3], stars[3:]])

    def _render_library(self) -> Screen:
        rows = [[Button(self.texts.resource(self.lang, rid).title, f"c:res:{rid}")]
                for rid in self.texts.resource_ids]
        return self.screen(self.t("library"), [*rows, [self.b("btn_home", "home")]])

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
            [self.b("btn_library", "info"), self.b("btn_home", "home")],
        ])

    def _render_forget(self) -> Screen:
        return self.screen(self.t("forget_confirm"), [
            [self.b("btn_forget_yes", "fg:yes")],
            [self.b("btn_forget_no", "fg:no")],
        ])

    def _render_language(self) -> Screen:
        return self.screen(self.t("choose_language"), [self._language_row()])

    def _render_autodelete(self) -> Screen:
        return self.screen(self.t("autodelete_q"), [
            [self.b("btn_ad_60", "ad:60"), self.b("btn_ad_1440", "ad:1440")],
            [self.b("btn_ad_off", "ad:0")],
        ])

    # ------------------------------------------------------------------ entry points

    def start(self) -> Reply:
        """/start or her first message: the greeting, language choice and danger question."""
        waiting = self.client.step == WAITING
        case_id = self.data.get("case")
        self.reset(HOME)
        if waiting and case_id:
            self.data["case"] = case_id
            self.save()
        return Reply([self._render_home()])

    def help(self) -> Reply:
        return Reply([self.screen(self.t("help"), [[self.b("btn_home", "home")]])])

    def ask_language(self) -> Reply:
        self.go(LANGUAGE)
        return Reply([self._render_language()])

    def ask_forget(self) -> Reply:
        self.go(FORGET)
        return Reply([self._render_forget()])

    def ask_autodelete(self) -> Reply:
        self.go(AUTODELETE)
        return Reply([self._render_autodelete()])

    async def quick_exit(self) -> Reply:
        """Someone may be looking at her phone: delete the conversation, drop whatever was
        in progress, pause her cases (their holders are told), leave one neutral line.
        Whoever writes from here next starts afresh."""
        self.reset(NEW)
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
        if self.client.step == CODE_WORD:
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
        if step == PHONE:
            phone = normalise_kg_phone(text)
            if phone is None:
                return Reply([Screen(self.t("phone_invalid")), self._render_t_phone()])
            self.data["phone"] = self.crypto.encrypt(phone).decode("ascii")
            self.go(CONFIRM)
            return Reply([self._render_t_confirm()])
        if step == NEW:
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
        self.reset(WAITING)
        self.data["case"] = case.id
        self.save()
        text = self.t("back_in_conversation", role=self.t(f"role_{resumed.role}")) \
            if resumed.active else self.t("back_waiting", number=case.id)
        screen = self.screen(text, [[self.b("btn_info", "info")], [self.b("btn_end", "end")]])
        return Reply([screen], delete_incoming=True, resumed=resumed, paused=paused)

    async def on_contact_shared(self, phone_number: str) -> Reply:
        """She shared a contact card: use it as the callback number where one is asked."""
        if self.client.step != PHONE:
            return Reply([Screen(self.t("use_buttons")), self.render()])
        return await self.on_text(phone_number)

    async def _danger_interrupt(self, signal: danger.Signal, case: Case | None) -> Reply:
        if case is not None and case.status == CaseStatus.WAITING:
            # The numbers at once; her request goes first only if she says so (a word can
            # be a false alarm, and an emergency takes a specialist from someone else).
            if case.urgency == Urgency.EMERGENCY:
                return Reply([self.notice("emergency_numbers", urgent=True)])
            text = self.t("emergency_numbers") + "\n\n" + self.t("raise_offer")
            return Reply([self.screen(text, [[self.b("btn_raise", "raise")]], urgent=True)])
        self.go(EMERGENCY, signal=signal.value)
        return Reply([self.emergency_screen(signal)])

    async def on_button(self, action: str, args: list[str]) -> Reply:
        """A tap on one of the current menu's buttons."""
        handler = getattr(self, f"_on_{action}", None)
        if handler is None:
            raise InvalidButton(action)
        reply: Reply = await handler(args)
        return reply

    # ------------------------------------------------------------------ buttons

    async def _on_raise(self, args: list[str]) -> Reply:
        """She says she is in danger now: her waiting request goes first."""
        case = await case_service.open_case_of(self.session, self.client.id)
        if case is None or case.status != CaseStatus.WAITING:
            raise InvalidButton("raise")
        if case.urgency != Urgency.EMERGENCY:
            case.urgency = Urgency.EMERGENCY
            log.info("case %d raised to emergency by the client", case.id)
        return Reply([self.notice("raised_done", urgent=True)])

    async def _on_ci(self, args: list[str]) -> Reply:
        """Her answer to the offer of a check-in: a time, or no."""
        case = await self._her_closed_case(args)
        if len(args) != 2 or (args[1] != "no" and args[1] not in checkin.SLOTS):
            raise InvalidButton("ci")
        if args[1] == "no":
            return Reply([self.notice("checkin_declined")], edit=True)
        at = checkin.when(args[1], now=self.now, settings=self.settings)
        await checkin.schedule(self.session, case=case, at=at)
        return Reply([self.notice("checkin_set", time=self.when_label(at))], edit=True)

    async def _on_ck(self, args: list[str]) -> Reply:
        """Her answer to the check-in itself: all right, or she would like to talk."""
        case = await self._her_closed_case(args)
        if len(args) != 2 or args[1] not in ("ok", "talk") or \
                not await checkin.was_sent(self.session, case_id=case.id):
            raise InvalidButton("ck")
        if args[1] == "ok":
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
        self.go(WAITING, remember=False, case=new.id)
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

    async def _her_closed_case(self, args: list[str]) -> Case:
        number = small_number(args[0]) if args else None
        case = await self.session.get(Case, number) if number is not None else None
        if case is None or case.client_id != self.client.id or not checkin.allowed(case):
            raise InvalidButton("ci")
        record = await self.session.get(Client, self.client.id)
        if not checkin.may_reach(case, record):
            # Whoever holds her phone after her quick exit cannot accept or answer one.
            raise InvalidButton("ci")
        return case

    async def _on_exit(self, args: list[str]) -> Reply:
        return await self.quick_exit()

    async def _on_codeword(self, args: list[str]) -> Reply:
        self.go(CODE_WORD)
        return Reply([self._render_code_word()], edit=True)

    async def _on_home(self, args: list[str]) -> Reply:
        reply = self.start()
        reply.edit = True
        return reply

    async def _on_lang(self, args: list[str]) -> Reply:
        code = args[0] if args else ""
        if code not in LANGUAGES:
            raise InvalidButton("lang")
        self.client.language = code
        if self.client.step == LANGUAGE:
            self.back_or_home()
        return Reply([self.render()], edit=True)

    def back_or_home(self) -> None:
        history = list(self.data.get("hist", []))
        if not history:
            self.reset(HOME)
            return
        previous = history.pop()
        self.data["hist"] = history
        if previous.startswith(f"{QUESTION}:"):
            self.client.step = QUESTION
            self.data["q"] = int(previous.split(":")[1])
        else:
            self.client.step = previous
        self.save()

    async def _on_back(self, args: list[str]) -> Reply:
        self.back_or_home()
        return Reply([self.render()], edit=True)

    async def _on_danger(self, args: list[str]) -> Reply:
        if args == ["yes"]:
            self.go(EMERGENCY, signal=danger.Signal.DANGER.value)
            return Reply([self.emergency_screen()])
        if args == ["no"]:
            return self._begin_triage()
        raise InvalidButton("danger")

    def _begin_triage(self) -> Reply:
        for key in ("for", "cat", "region", "answers", "q", "contact", "when", "phone"):
            self.data.pop(key, None)
        if self.client.shared_device is None:
            self.go(SAFETY, next=FOR)
            return Reply([self._render_safety()], edit=True)
        self.go(FOR)
        return Reply([self._render_t_for()], edit=True)

    async def _on_info(self, args: list[str]) -> Reply:
        self.go(LIBRARY)
        return Reply([self._render_library()], edit=True)

    async def _on_res(self, args: list[str]) -> Reply:
        rid = args[0] if args else ""
        if rid not in self.texts.resource_ids:
            raise InvalidButton("res")
        region = self.data.get("region")
        if rid == "services" and not region:
            region = await case_service.last_region(self.session, self.client.id)
        self.go(RESOURCE, res=rid, partners_region=region)
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

    async def _on_write(self, args: list[str]) -> Reply:
        if args == ["no"]:
            self.go(NOT_NOW)
            return Reply([self._render_not_now()])
        if args != ["yes"]:
            raise InvalidButton("write")
        existing = await case_service.open_case_of(self.session, self.client.id)
        if existing is not None:
            if existing.status == CaseStatus.WAITING:
                existing.urgency = Urgency.EMERGENCY
            self.go(WAITING, remember=False, case=existing.id)
            return Reply([self.notice("already_waiting")])
        case = await case_service.create_case(
            self.session, client=self.client, telegram_id=self.telegram_id, crypto=self.crypto,
            settings=self.settings, now=self.now, urgency=Urgency.EMERGENCY,
            after_exit=await case_service.left_by_exit_of(self.session, self.client.id),
        )
        held = await self._hold(case)
        screens = [self._waiting_screen(case, held)]
        if self.client.shared_device is None:
            self.go(SAFETY, remember=False, next=CASE_REGION, case=case.id)
            screens.append(self._render_safety())
        else:
            self.go(CASE_REGION, remember=False, case=case.id)
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

    async def _on_safe(self, args: list[str]) -> Reply:
        if args not in (["shared"], ["private"]):
            raise InvalidButton("safe")
        screens: list[Screen] = []
        if args == ["shared"]:
            self.client.shared_device = True
            self.client.auto_delete_minutes = DEFAULT_AUTODELETE
            # After "I'm in danger", two lines, not eight: the rest is in the library.
            short = self.data.get("next") == CASE_REGION
            screens.append(Screen(self.t("safety_shared_short" if short else "safety_shared")))
        else:
            self.client.shared_device = False
        return self._after_safety(screens)

    def _after_safety(self, screens: list[Screen]) -> Reply:
        following = str(self.data.pop("next", FOR))
        if following == CASE_REGION:
            self.go(CASE_REGION, remember=False)
            screens.append(self._render_case_region())
        else:
            self.go(FOR, remember=False)
            screens.append(self._render_t_for())
        # The tips must stay readable: the next menu comes as a new message after them.
        return Reply(screens, edit=not screens[:-1])

    async def _on_skip(self, args: list[str]) -> Reply:
        step = self.client.step
        if step == SAFETY:
            return self._after_safety([])
        if step == FOR:
            self.data.pop("for", None)
            self.go(CATEGORY)
        elif step == CATEGORY:
            self.data.pop("cat", None)
            self.go(REGION)
        elif step == REGION:
            self.data.pop("region", None)
            self.go(SCREEN)
        elif step == SCREEN:
            self.data.pop("answers", None)
            self.go(CONTACT)
        elif step == QUESTION:
            return self._answer(None)
        elif step in (CONTACT, TIME, PHONE):
            # Skipping how to reach her means: here in this chat, as soon as someone can.
            self.data["contact"] = "chat_now"
            self.data.pop("when", None)
            self.data.pop("phone", None)
            self.go(CONFIRM)
        elif step == CASE_REGION:
            self.go(WAITING, remember=False)
            return Reply([self._region_thanks()], edit=True)
        elif step == CODE_WORD:
            self.back_or_home()
        else:
            raise InvalidButton("skip")
        return Reply([self.render()], edit=True)

    async def _on_for(self, args: list[str]) -> Reply:
        if not args or args[0] not in case_service.FOR_WHOM:
            raise InvalidButton("for")
        self.data["for"] = args[0]
        self.go(CATEGORY)
        return Reply([self.render()], edit=True)

    async def _on_cat(self, args: list[str]) -> Reply:
        if not args or args[0] not in case_service.CATEGORIES:
            raise InvalidButton("cat")
        self.go(REGION, cat=args[0])
        return Reply([self.render()], edit=True)

    async def _on_reg(self, args: list[str]) -> Reply:
        code = args[0] if args else ""
        if self.settings.region(code) is None:
            raise InvalidButton("reg")
        if self.client.step == CASE_REGION:
            case = await self._current_case()
            if case is not None:
                await case_service.update_region(self.session, case=case, region=code)
            self.go(WAITING, remember=False)
            return Reply([self._region_thanks(code)], edit=True)
        self.go(SCREEN, region=code)
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

    async def _on_scr(self, args: list[str]) -> Reply:
        if args != ["start"]:
            raise InvalidButton("scr")
        self.data["answers"] = {}
        self.go(QUESTION, q=1)
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
            self.go(QUESTION, q=number + 1)
        else:
            self.go(CONTACT)
        return Reply([self.render()], edit=True)

    async def _on_q(self, args: list[str]) -> Reply:
        if len(args) != 2 or args[1] not in ("y", "n") or small_number(args[0], 2) is None:
            raise InvalidButton("q")
        if small_number(args[0], 2) != int(self.data.get("q", 0)):
            return self.expired()
        return self._answer(args[1] == "y")

    async def _on_ct(self, args: list[str]) -> Reply:
        if not args or args[0] not in case_service.CONTACTS:
            raise InvalidButton("ct")
        self.data["contact"] = args[0]
        if args[0] == "chat_now":
            self.data.pop("when", None)
            self.data.pop("phone", None)
            self.go(CONFIRM)
        else:
            self.go(TIME)
        return Reply([self.render()], edit=True)

    async def _on_tm(self, args: list[str]) -> Reply:
        if len(args) != 1 or not SLOT_CODE.fullmatch(args[0]):
            raise InvalidButton("tm")
        slot = self._hours().slot(self._role(), self.now, args[0])
        if slot is None:  # an older screen's time, no longer one a specialist can keep
            return self.expired()
        self.data["when"] = slot.when.astimezone(self.now.tzinfo).isoformat()  # stored as UTC
        if self.data.get("contact") == "call_later":
            self.go(PHONE)
        else:
            self.go(CONFIRM)
        return Reply([self.render()], edit=True)

    async def _on_ok(self, args: list[str]) -> Reply:
        if self.client.step != CONFIRM:
            return self.expired()
        existing = await case_service.open_case_brief(self.session, self.client.id)
        if existing is not None:
            self.go(WAITING, remember=False, case=existing.id)
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
        self.reset(WAITING)
        self.data["case"] = case.id
        self.save()
        screens = [self._waiting_screen(case, held)]
        if result is screening.ScreenResult.SCREENED_IN:
            screens.insert(0, self.notice("screened_in_note", urgent=True))
        return Reply(screens, edit=True, held=held)

    async def _on_end(self, args: list[str]) -> Reply:
        """She ends the conversation (or withdraws a request nobody has taken yet)."""
        case = await case_service.open_case_of(self.session, self.client.id)
        if case is None:
            self.reset(HOME)
            return Reply([self._render_home()], edit=True)
        outcome = await case_service.end_by_client(
            self.session, case=case, texts=self.texts, now=self.now)
        if case.owner_id is not None:
            self.reset(RATE)
            self.data["case"] = case.id
            self.save()
            return Reply([self._render_rate()], edit=True, route=outcome)
        self.reset(HOME)
        return Reply([Screen(self.t("request_withdrawn")), self._render_home()], route=outcome)

    async def _on_rate(self, args: list[str]) -> Reply:
        if not args or small_number(args[0], 1) is None:
            raise InvalidButton("rate")
        case_id = self.data.get("case")
        if isinstance(case_id, int):
            await case_service.rate(self.session, case_id=case_id, client_id=self.client.id,
                                    rating=int(args[0]))
        self.reset(HOME)
        return Reply([self.screen(self.t("rate_thanks"), [[self.b("btn_home", "home")]])],
                     edit=True)

    async def _on_fg(self, args: list[str]) -> Reply:
        if args == ["yes"]:
            self.reset(NEW)
            return Reply([Screen(self.t("forget_done"))], quick_exit=True, forget=True)
        if args == ["no"]:
            self.back_or_home()
            return Reply([self.render()], edit=True)
        raise InvalidButton("fg")

    async def _on_ad(self, args: list[str]) -> Reply:
        if not args or args[0] not in AUTODELETE_CHOICES:
            raise InvalidButton("ad")
        minutes = AUTODELETE_CHOICES[args[0]]
        self.client.auto_delete_minutes = minutes
        self.back_or_home()
        note = self.t("autodelete_off") if minutes is None else self.t(
            "autodelete_on", hours=minutes // 60)
        return Reply([Screen(note), self.render()])


class InvalidButton(Exception):
    """Callback data that no current menu offers (forged, or from an old version)."""


def parse_callback(data: str | None) -> tuple[str, list[str]] | None:
    """`c:action[:arg...]` into its parts, or None for anything else."""
    if not data or len(data) > 64 or not data.startswith("c:"):
        return None
    parts = data[2:].split(":")
    if not parts[0] or not all(p.replace("_", "").isalnum() for p in parts if p):
        return None
    return parts[0], parts[1:]

