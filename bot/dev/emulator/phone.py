"""A simulated Telegram user: sends what a person sends, taps buttons by label, reads her screen.

Used by the end-to-end tests, the demo and the benchmarks. Every action goes into the
emulator as an update; the bot fetches it over HTTP like from Telegram.
"""

from __future__ import annotations

from typing import Any

from bot.dev.emulator.server import BotAPIEmulator, EmuMessage, EmuUser


class NoSuchButton(AssertionError):
    pass


class Phone:
    """One person's Telegram app, talking to the bot through the emulator."""

    def __init__(self, emulator: BotAPIEmulator, user: EmuUser) -> None:
        self.emu = emulator
        self.user = user
        self._seen = 0  # bot messages already seen by `wait_reply`

    @classmethod
    def new(
        cls, emulator: BotAPIEmulator, first_name: str, *, language_code: str | None = "ru"
    ) -> Phone:
        return cls(emulator, emulator.add_user(first_name, language_code=language_code))

    @property
    def id(self) -> int:
        return self.user.id

    # ------------------------------------------------------------------ reading

    def messages(self) -> list[EmuMessage]:
        """The chat as the phone shows it: nothing that was deleted."""
        return [m for m in self.emu.chat(self.id).messages if not m.deleted]

    def bot_messages(self) -> list[EmuMessage]:
        return [m for m in self.messages() if m.from_bot]

    def all_bot_messages(self) -> list[EmuMessage]:
        """Every message the bot ever sent here, deleted or not."""
        return [m for m in self.emu.chat(self.id).messages if m.from_bot]

    def last(self) -> EmuMessage:
        msgs = self.bot_messages()
        if not msgs:
            raise AssertionError("the bot has not written here")
        return msgs[-1]

    def screen(self, width: int = 64) -> str:
        """A readable rendering of the chat: her messages right, the bot's left, buttons below."""
        lines: list[str] = []
        for m in self.messages():
            body = m.plain()
            if m.from_bot:
                for part in body.splitlines() or [""]:
                    lines.append(f"  {part}")
                for row in (m.reply_markup or {}).get("inline_keyboard", []):
                    lines.append("  " + "  ".join(f"[ {b['text']} ]" for b in row))
            else:
                lines.append(f"{'':>{max(0, width - len(body) - 4)}}{body} <")
            lines.append("")
        return "\n".join(lines)

    def text(self) -> str:
        """Everything visible in the chat as plain text (for assertions)."""
        return "\n".join(m.plain() for m in self.messages())

    def buttons(self, message: EmuMessage | None = None) -> list[str]:
        msg = message or self.last()
        return [b["text"] for b in msg.buttons]

    # ------------------------------------------------------------------ waiting

    async def wait_reply(self, count: int = 1, timeout: float = 10.0) -> list[EmuMessage]:
        """Wait for `count` new bot messages or edits since the last wait; return them."""
        chat = self.emu.chat(self.id)

        def arrived() -> bool:
            return sum(1 for m in chat.messages if m.from_bot) >= self._seen + count

        await self.emu.wait_for(arrived, timeout)
        new = [m for m in chat.messages if m.from_bot][self._seen:]
        self._seen += len(new)
        return new

    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        await self.emu.wait_for(lambda: bool(predicate()), timeout)

    def mark_seen(self) -> None:
        self._seen = len(self.all_bot_messages())

    # ------------------------------------------------------------------ acting

    async def send(self, text: str, *, reply_to: EmuMessage | int | None = None) -> EmuMessage:
        self.mark_seen()
        target = reply_to.message_id if isinstance(reply_to, EmuMessage) else reply_to
        return await self.emu.user_message(self.id, text=text, reply_to=target)

    async def send_media(
        self, kind: str, *, caption: str | None = None, reply_to: EmuMessage | None = None,
        **extra: Any,
    ) -> EmuMessage:
        self.mark_seen()
        media = {"type": kind, "file_id": self.emu.new_file_id(kind), **extra}
        return await self.emu.user_message(
            self.id, caption=caption, media=media,
            reply_to=reply_to.message_id if reply_to else None,
        )

    async def send_photo(self, caption: str | None = None, **kw: Any) -> EmuMessage:
        return await self.send_media("photo", caption=caption, **kw)

    async def send_sticker(self) -> EmuMessage:
        return await self.send_media("sticker")

    async def send_voice(self, **kw: Any) -> EmuMessage:
        return await self.send_media("voice", **kw)

    async def send_location(self, latitude: float = 42.87, longitude: float = 74.59) -> EmuMessage:
        return await self.send_media("location", latitude=latitude, longitude=longitude)

    async def send_contact(self, phone_number: str, *, own: bool = True,
                           user_id: int | None = None) -> EmuMessage:
        """A contact card: her own (Telegram's "share my phone number"), or someone else's
        from her address book (`own=False`: another user's id, or none)."""
        return await self.send_media("contact", phone_number=phone_number,
                                     user_id=self.id if own else user_id)

    async def edit(self, message: EmuMessage, text: str) -> None:
        self.mark_seen()
        await self.emu.user_edits(self.id, message.message_id, text)

    def find_button(self, label: str, message: EmuMessage | None = None) -> tuple[EmuMessage, str]:
        """The newest visible message with a button whose text contains `label`."""
        candidates = [message] if message else list(reversed(self.bot_messages()))
        for msg in candidates:
            for button in msg.buttons:
                if label in button["text"] and "callback_data" in button:
                    return msg, str(button["callback_data"])
        shown = [b["text"] for m in self.bot_messages() for b in m.buttons]
        raise NoSuchButton(f"no button {label!r} on screen; buttons: {shown}")

    async def press(self, label: str, *, message: EmuMessage | None = None) -> str:
        """Tap the button whose label contains `label`; returns the callback query id."""
        msg, data = self.find_button(label, message)
        self.mark_seen()
        return await self.emu.user_presses(self.id, msg, data)

    async def press_data(self, message: EmuMessage, data: str) -> str:
        """Send callback data of her choosing (a forged or stale button)."""
        self.mark_seen()
        return await self.emu.user_presses(self.id, message, data)

    async def answered(self, callback_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the bot answered the callback query (the spinner stops)."""
        await self.emu.wait_for(lambda: callback_id in self.emu.callback_answers, timeout)
        return self.emu.callback_answers[callback_id]
