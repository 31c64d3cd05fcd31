"""A loopback Telegram Bot API emulator (aiohttp) for tests, the demo and benchmarks.

It serves `/bot<token>/<method>` like api.telegram.org, keeps every private chat as the
phone would show it, and validates like Telegram where the bot could get it wrong: text
length, callback_data size, unknown chats, blocked users, the 48-hour delete window, edits
of unchanged or missing messages. Faults can be injected per method: 429 with retry_after,
5xx, or a dropped connection before or after the request takes effect.

Users are simulated in-process (see `bot.dev.emulator.phone.Phone`); the bot talks to the
emulator over real HTTP, exactly as it would to Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
DELETE_WINDOW_S = 48 * 3600

# Parameters that Telegram types as strings: PTB sends them un-encoded, so never json-parse.
_STRING_PARAMS = {
    "text",
    "caption",
    "parse_mode",
    "callback_query_id",
    "callback_data",
    "url",
    "secret_token",
    "file_id",
    "photo",
    "document",
    "voice",
    "video",
    "sticker",
    "audio",
    "action",
    "language_code",
    "business_connection_id",
    "message_effect_id",
    "ip_address",
    "inline_message_id",
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Fault:
    """An injected failure for the next `times` calls of `method` (or any method if None)."""

    kind: str  # "429", "500", "502", "drop", "delay"
    method: str | None = None
    times: int = 1
    retry_after: int = 1
    # For "drop" and 5xx: "before" loses the request, "after" applies it and loses the answer.
    when: str = "before"
    # For "delay": seconds the request hangs before it is carried out.
    seconds: float = 0.0


@dataclass
class EmuMessage:
    chat_id: int
    message_id: int
    from_bot: bool
    date: float
    text: str | None = None
    caption: str | None = None
    media: dict[str, Any] | None = None  # {"type": "photo", "file_id": ...}
    reply_markup: dict[str, Any] | None = None
    reply_to: int | None = None
    deleted: bool = False
    edited: bool = False
    entities: list[dict[str, Any]] | None = None
    update_id: int | None = None  # for a user's message: the update it arrived in
    source: tuple[int, int] | None = None  # for a copy: (chat id, message id) it came from

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b for row in rows for b in row]

    def plain(self) -> str:
        """What a person would read: text or caption without markup, media as a tag."""
        body = self.text if self.text is not None else (self.caption or "")
        parts = []
        if self.media:
            parts.append(f"[{self.media['type']}]")
        if body:
            parts.append(body)
        return " ".join(parts)


@dataclass
class EmuUser:
    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None
    blocked_bot: bool = False

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d


@dataclass
class EmuChat:
    user: EmuUser
    messages: list[EmuMessage] = field(default_factory=list)
    next_id: int = 1

    def by_id(self, message_id: int) -> EmuMessage | None:
        # Message ids grow by one per message in a private chat.
        index = message_id - 1
        if 0 <= index < len(self.messages) and self.messages[index].message_id == message_id:
            return self.messages[index]
        return next((m for m in self.messages if m.message_id == message_id), None)


class _HtmlChecker(HTMLParser):
    """Checks Telegram's HTML subset well enough to catch what a bot could break."""

    allowed = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
               "tg-spoiler", "span", "blockquote", "tg-emoji"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.allowed:
            self.error = f"Unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = f"Unexpected end tag \"{tag}\""
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> str:
    checker = _HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error or checker.stack:
        raise bad_request(f"can't parse entities: {checker.error or 'unclosed tag'}")
    return "".join(checker.text)


_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?")


def _chat_of(value: object) -> int | None:
    """A chat id from API parameters (a number, or its text)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


class BotAPIEmulator:
    """The emulated Bot API server and the world of users behind it."""

    def __init__(self, token: str | None = None, *, bot_username: str = "sezim_test_bot",
                 rtt: float = 0.0) -> None:
        # A fixed round trip added to every Bot API call (seconds): half before the call is
        # carried out (the request on its way), half before its answer leaves.
        self.rtt = rtt
        self.token = token or f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(30)}"
        self.bot_id = int(self.token.split(":")[0])
        self.bot_username = bot_username
        self.users: dict[int, EmuUser] = {}
        self.chats: dict[int, EmuChat] = {}
        self.updates: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        # Command menus by (scope type, chat id, language code).
        self.menus: dict[tuple[str, int | None, str | None], list[str]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commands: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.clock_offset = 0.0
        self._update_ids = itertools.count(1)
        self._user_ids = itertools.count(7_000_000_001)
        self._callback_ids = itertools.count(1)
        self._files = itertools.count(1)
        self._changed = asyncio.Condition()
        # Waiters on one chat are woken only by changes in that chat, and a waiter for an
        # update's answer only by that answer: a benchmark has hundreds of people waiting.
        self._chat_changed: dict[int, asyncio.Condition] = {}
        self._answer_waiters: dict[int, asyncio.Future[float]] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.record_calls = True
        self.history: dict[int, dict[str, Any]] = {}
        # Latency tracking for benchmarks: when each update was handed to the bot, and when
        # the bot first answered in that update's chat (a message, an edit, a copy out of
        # it, or the answer to the button press).
        self.track_latency = False
        self.handed_out: dict[int, float] = {}
        self.answered: dict[int, float] = {}  # update id -> seconds from hand-out to answer
        self._pending_by_chat: dict[int, list[int]] = {}
        self._callback_chat: dict[str, int] = {}
        self.callback_updates: dict[str, int] = {}
        self._update_chat: dict[int, int] = {}
        self.last_update_id = 0
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status)
        self._webhook_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # Long polls in flight are cut short at stop rather than waited for.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.base_url

    async def stop(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock (message dates, the 48-hour delete window)."""
        self.clock_offset += seconds

    # ------------------------------------------------------------------ the world

    def add_user(
        self, first_name: str, *, language_code: str | None = "ru", username: str | None = None
    ) -> EmuUser:
        user = EmuUser(next(self._user_ids), first_name, language_code, username)
        self.users[user.id] = user
        self.chats[user.id] = EmuChat(user)
        return user

    def chat(self, user_id: int) -> EmuChat:
        return self.chats[user_id]

    def new_file_id(self, kind: str) -> str:
        return f"{kind}-{next(self._files)}-{secrets.token_hex(4)}"

    async def _notify(self, *chat_ids: int | None) -> None:
        async with self._changed:
            self._changed.notify_all()
        for chat_id in chat_ids:
            condition = self._chat_changed.get(chat_id) if chat_id is not None else None
            if condition is not None:
                async with condition:
                    condition.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, *,
                       chat_id: int | None = None) -> None:
        """Wait until `predicate()` holds after some change in the emulator (in the chat
        with `chat_id` only, when given: the predicate must look only at that chat)."""
        condition = self._changed if chat_id is None else \
            self._chat_changed.setdefault(chat_id, asyncio.Condition())

        async def _wait() -> None:
            async with condition:
                await condition.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    def _message_dict(self, msg: EmuMessage) -> dict[str, Any]:
        chat = self.chats[msg.chat_id]
        d: dict[str, Any] = {
            "message_id": msg.message_id,
            "date": int(msg.date),
            "chat": {"id": chat.user.id, "type": "private", "first_name": chat.user.first_name},
        }
        if msg.from_bot:
            d["from"] = {"id": self.bot_id, "is_bot": True, "first_name": "Bot",
                         "username": self.bot_username}
        else:
            d["from"] = chat.user.as_dict()
        if msg.text is not None:
            d["text"] = msg.text
        if msg.entities:
            d["entities"] = msg.entities
        if msg.caption is not None:
            d["caption"] = msg.caption
        if msg.media:
            d.update(self._media_payload(msg.media))
        if msg.reply_markup:
            d["reply_markup"] = msg.reply_markup
        if msg.reply_to is not None:
            target = chat.by_id(msg.reply_to)
            if target is not None and not target.deleted:
                d["reply_to_message"] = self._message_dict(
                    EmuMessage(**{**target.__dict__, "reply_to": None})
                )
        if msg.edited:
            d["edit_date"] = int(self.now())
        return d

    @staticmethod
    def _media_payload(media: dict[str, Any]) -> dict[str, Any]:
        kind = media["type"]
        fid = media["file_id"]
        unique = fid.split("-")[-1]
        if kind == "photo":
            return {"photo": [{"file_id": fid, "file_unique_id": unique, "width": 640,
                               "height": 480, "file_size": 20000}]}
        if kind == "voice":
            return {"voice": {"file_id": fid, "file_unique_id": unique, "duration": 3}}
        if kind == "video":
            return {"video": {"file_id": fid, "file_unique_id": unique, "width": 640,
                              "height": 480, "duration": 3}}
        if kind == "document":
            return {"document": {"file_id": fid, "file_unique_id": unique,
                                 "file_name": media.get("file_name", "file.pdf")}}
        if kind == "sticker":
            return {"sticker": {"file_id": fid, "file_unique_id": unique, "type": "regular",
                                "width": 512, "height": 512, "is_animated": False,
                                "is_video": False}}
        if kind == "location":
            return {"location": {"latitude": media["latitude"], "longitude": media["longitude"]}}
        if kind == "contact":
            contact = {"phone_number": media["phone_number"],
                       "first_name": media.get("first_name", "Contact")}
            if media.get("user_id") is not None:
                contact["user_id"] = media["user_id"]  # a Telegram user's own card
            return {"contact": contact}
        raise ValueError(kind)

    def _push_update(self, payload: dict[str, Any], chat_id: int | None = None) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **payload}
        self.updates.append(update)
        if not self.track_latency:
            self.history[update["update_id"]] = update
        if chat_id is not None:
            self._update_chat[update["update_id"]] = chat_id
        self.last_update_id = update["update_id"]
        return update

    def _handed_out(self, updates: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        for update in updates:
            uid = update["update_id"]
            if uid in self.handed_out:
                continue
            self.handed_out[uid] = now
            chat = self._update_chat.get(uid)
            if chat is not None:
                self._pending_by_chat.setdefault(chat, []).append(uid)

    def _answered_in(self, chat_id: int | None) -> None:
        if not self.track_latency or chat_id is None:
            return
        pending = self._pending_by_chat.get(chat_id)
        if pending:
            uid = pending.pop(0)
            self.answered[uid] = time.perf_counter() - self.handed_out[uid]
            waiter = self._answer_waiters.pop(uid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(self.answered[uid])

    async def wait_answered(self, update_id: int, timeout: float = 60.0) -> float:
        """Wait until the bot answered update `update_id` (latency tracking on); returns
        the latency."""
        if update_id in self.answered:
            return self.answered[update_id]
        waiter = self._answer_waiters.get(update_id)
        if waiter is None:
            waiter = self._answer_waiters[update_id] = \
                asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)

    async def redeliver(self, update_id: int) -> None:
        """Telegram sending an update again (as after a lost confirmation)."""
        self.updates.append(dict(self.history[update_id]))
        self.updates.sort(key=lambda u: u["update_id"])
        await self._notify()

    async def user_message(
        self,
        user_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        media: dict[str, Any] | None = None,
        reply_to: int | None = None,
    ) -> EmuMessage:
        """The user sends a message: it appears in her chat and as an update for the bot."""
        chat = self.chats[user_id]
        msg = EmuMessage(user_id, chat.next_id, False, self.now(), text=text, caption=caption,
                         media=media, reply_to=reply_to)
        chat.next_id += 1
        if text:
            match = _COMMAND_RE.match(text)
            if match:
                msg.entities = [{"type": "bot_command", "offset": 0, "length": match.end()}]
        chat.messages.append(msg)
        msg.update_id = self._push_update({"message": self._message_dict(msg)},
                                          chat_id=user_id)["update_id"]
        await self._notify(user_id)
        return msg

    async def user_edits(self, user_id: int, message_id: int, text: str) -> None:
        chat = self.chats[user_id]
        msg = chat.by_id(message_id)
        if msg is None or msg.from_bot:
            raise ValueError("no such message of hers")
        if msg.media is not None:
            msg.caption = text
        else:
            msg.text = text
        msg.edited = True
        self._push_update({"edited_message": self._message_dict(msg)})
        await self._notify(user_id)

    async def user_presses(self, user_id: int, message: EmuMessage, data: str) -> str:
        """The user taps an inline button carrying `data` (which may be forged)."""
        cq_id = str(next(self._callback_ids))
        self._callback_chat[cq_id] = user_id
        self.callback_updates[cq_id] = self._push_update(chat_id=user_id, payload={
            "callback_query": {
                "id": cq_id,
                "from": self.users[user_id].as_dict(),
                "message": self._message_dict(message),
                "chat_instance": str(user_id),
                "data": data,
            }
        })["update_id"]
        await self._notify(user_id)
        return cq_id

    async def raw_update(self, payload: dict[str, Any]) -> None:
        """Any update the tests can imagine (channel posts, group joins...)."""
        self._push_update(payload)
        await self._notify()

    # ------------------------------------------------------------------ HTTP

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                params.update(await request.json())
                return params
            if ctype.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part is None or not hasattr(part, "name") or part.name is None:
                        continue
                    if part.filename:  # type: ignore[union-attr]
                        await part.read()  # type: ignore[union-attr]
                        params[part.name] = {"upload": part.filename}  # type: ignore[union-attr]
                    else:
                        params[part.name] = await part.text()  # type: ignore[union-attr]
            else:
                params.update(await request.post())
        for key, value in list(params.items()):
            if isinstance(value, str) and key not in _STRING_PARAMS:
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method in (None, method) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        if self.rtt:
            await asyncio.sleep(self.rtt / 2)
        response = await self._carry_out(request, method)
        if self.rtt:
            await asyncio.sleep(self.rtt / 2)
        return response

    async def _carry_out(self, request: web.Request, method: str) -> web.StreamResponse:
        try:
            params = await self._params(request)
        except (ValueError, UnicodeDecodeError):
            return self._error(bad_request("can't parse request"))
        fault = self._take_fault(method) if method != "getUpdates" else None
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.when == "before":
            return await self._fault_response(request, fault)
        handler = getattr(self, "api_" + method[:1].lower() + method[1:], None)
        if handler is None:
            return self._error(ApiError(404, "Not Found: method not found"))
        if self.record_calls:
            self.calls.append((method, params))
        try:
            result = await handler(params)
        except ApiError as exc:
            return self._error(exc)
        except (KeyError, TypeError, ValueError) as exc:
            return self._error(bad_request(f"invalid parameters: {exc}"))
        if method != "getUpdates":
            await self._notify(_chat_of(params.get("chat_id")),
                               self._callback_chat.get(str(params.get("callback_query_id"))))
        if fault is not None:
            return await self._fault_response(request, fault)
        return web.json_response({"ok": True, "result": result})

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "429":
            return self._error(ApiError(429, f"Too Many Requests: retry after {fault.retry_after}",
                                        retry_after=fault.retry_after))
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        code = int(fault.kind)
        return web.json_response(
            {"ok": False, "error_code": code, "description": "Internal Server Error"}, status=code
        )

    @staticmethod
    def _error(exc: ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                "description": exc.description}
        if exc.retry_after is not None:
            body["parameters"] = {"retry_after": exc.retry_after}
        return web.json_response(body, status=exc.code)

    # ------------------------------------------------------------------ validation helpers

    def _chat_for(self, params: dict[str, Any], key: str = "chat_id") -> EmuChat:
        try:
            chat_id = int(params[key])
        except (KeyError, TypeError, ValueError):
            raise bad_request("chat not found") from None
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat.user.blocked_bot:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    if not button.get("text"):
                        raise bad_request("text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    if data is not None:
                        size = len(str(data).encode("utf-8"))
                        if not 1 <= size <= MAX_CALLBACK_DATA:
                            raise bad_request("BUTTON_DATA_INVALID")
                    elif not any(k in button for k in ("url", "switch_inline_query", "copy_text",
                                                         "web_app", "login_url", "pay")):
                        raise bad_request("can't find field \"callback_data\"")
        return markup

    @staticmethod
    def _visible_text(text: Any, parse_mode: str | None, limit: int, what: str) -> str:
        if not isinstance(text, str):
            raise bad_request(f"{what} must be a string")
        shown = text
        if parse_mode and parse_mode.upper() == "HTML":
            shown = parse_html(text)
        elif parse_mode:
            shown = text  # MarkdownV2 is not used by this bot; length check only
        if what == "message text" and not shown.strip():
            raise bad_request("message text is empty")
        if len(shown) > limit:
            raise bad_request(f"{what} is too long")
        return shown

    def _reply_to(self, chat: EmuChat, params: dict[str, Any]) -> int | None:
        target = params.get("reply_to_message_id")
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target = reply.get("message_id")
            allow = reply.get("allow_sending_without_reply")
        else:
            allow = params.get("allow_sending_without_reply")
        if target is None:
            return None
        found = chat.by_id(int(target))
        if found is None or found.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(target)

    def _bot_message(self, chat: EmuChat, **kwargs: Any) -> EmuMessage:
        msg = EmuMessage(chat.user.id, chat.next_id, True, self.now(), **kwargs)
        chat.next_id += 1
        chat.messages.append(msg)
        return msg

    # ------------------------------------------------------------------ Bot API methods

    async def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Sezim",
                "username": self.bot_username, "can_join_groups": False,
                "can_read_all_group_messages": False, "supports_inline_queries": False,
                "can_connect_to_business": False, "has_main_web_app": False}

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset and self.updates and self.updates[0]["update_id"] < offset:
            # Telegram forgets every update below the offset: it is confirmed.
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            await self._notify()

        def pending() -> list[dict[str, Any]]:
            return [u for u in self.updates if u["update_id"] >= offset][:limit]

        if not pending() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: bool(pending()), timeout)
        result = pending()
        if self.track_latency:
            self._handed_out(result)
        return result

    async def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def api_setWebhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url")
        if not url:
            self.webhook = None
            return True
        token = params.get("secret_token")
        if token is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(token)):
            raise bad_request("secret token contains unallowed characters")
        self.webhook = dict(params)
        if self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        return True

    async def _deliver_webhooks(self) -> None:
        """POST pending updates to the webhook one at a time, as Telegram does, retrying
        until the bot answers 200."""
        import aiohttp

        async with aiohttp.ClientSession() as http:
            while True:
                await self.wait_for(lambda: self.webhook is not None and bool(self.updates),
                                    timeout=3600)
                hook = self.webhook
                if hook is None:
                    continue
                update = self.updates[0]
                headers = {}
                if hook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
                try:
                    async with http.post(str(hook["url"]), json=update, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=30)) as resp:
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                self.webhook_deliveries.append((update["update_id"], status))
                if status == 200:
                    if self.updates and self.updates[0] is update:
                        self.updates.pop(0)
                    await self._notify()
                else:
                    await asyncio.sleep(0.2)

    async def api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    async def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(c["description"]) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands.append(params)
        self.menus[self._menu_key(params)] = [c["command"] for c in commands]
        return True

    async def api_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.menus.pop(self._menu_key(params), None)
        return True

    @staticmethod
    def _menu_key(params: dict[str, Any]) -> tuple[str, int | None, str | None]:
        scope = params.get("scope") or {"type": "default"}
        if isinstance(scope, str):
            scope = json.loads(scope)
        chat = scope.get("chat_id")
        return scope["type"], int(chat) if chat is not None else None, \
            params.get("language_code") or None

    def menu_for(self, chat_id: int, language: str | None) -> list[str]:
        """The command menu a user sees in her private chat with the bot, by Telegram's
        order of scopes: her chat, then all private chats, then the default; each in her
        language first."""
        for scope, chat in (("chat", chat_id), ("all_private_chats", None), ("default", None)):
            for lang in (language, None):
                found = self.menus.get((scope, chat, lang))
                if found is not None:
                    return found
        return []

    async def api_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for(params)
        return {"id": chat.user.id, "type": "private", "first_name": chat.user.first_name,
                "accent_color_id": 0, "max_reaction_count": 11}

    async def api_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat_for(params)
        return True

    async def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for(params)
        # Like Telegram, the message keeps the visible text (markup becomes entities).
        text = self._visible_text(params.get("text", ""), params.get("parse_mode"), MAX_TEXT,
                                  "message text")
        markup = self._check_markup(params.get("reply_markup"))
        msg = self._bot_message(chat, text=text, reply_markup=markup,
                                reply_to=self._reply_to(chat, params))
        self._answered_in(chat.user.id)
        return self._message_dict(msg)

    async def _send_media(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        chat = self._chat_for(params)
        source = params.get(kind)
        if source is None:
            raise bad_request(f"there is no {kind} in the request")
        file_id = source if isinstance(source, str) else self.new_file_id(kind)
        caption = params.get("caption")
        if caption is not None:
            caption = self._visible_text(caption, params.get("parse_mode"), MAX_CAPTION,
                                         "message caption")
        markup = self._check_markup(params.get("reply_markup"))
        msg = self._bot_message(chat, caption=caption, media={"type": kind, "file_id": file_id},
                                reply_markup=markup, reply_to=self._reply_to(chat, params))
        self._answered_in(chat.user.id)
        return self._message_dict(msg)

    async def api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "photo")

    async def api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "document")

    async def api_sendVoice(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "voice")

    async def api_sendVideo(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_media(params, "video")

    async def api_sendLocation(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for(params)
        media = {"type": "location", "file_id": "loc-0", "latitude": float(params["latitude"]),
                 "longitude": float(params["longitude"])}
        msg = self._bot_message(chat, media=media, reply_to=self._reply_to(chat, params))
        return self._message_dict(msg)

    async def api_copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        target = self._chat_for(params)
        source_chat = self.chats.get(int(params["from_chat_id"]))
        if source_chat is None:
            raise bad_request("chat not found")
        source = source_chat.by_id(int(params["message_id"]))
        if source is None or source.deleted:
            raise bad_request("message to copy not found")
        caption = params.get("caption", source.caption)
        markup = self._check_markup(params.get("reply_markup"))
        msg = self._bot_message(target, text=source.text, caption=caption,
                                media=dict(source.media) if source.media else None,
                                reply_markup=markup, reply_to=self._reply_to(target, params))
        msg.source = (source_chat.user.id, source.message_id)
        # A copy out of a chat (the relay) is the answer to what was written there.
        self._answered_in(source_chat.user.id)
        return {"message_id": msg.message_id}

    def _editable(self, params: dict[str, Any]) -> EmuMessage:
        chat = self._chat_for(params)
        msg = chat.by_id(int(params["message_id"]))
        if msg is None or msg.deleted:
            raise bad_request("message to edit not found")
        if not msg.from_bot:
            raise bad_request("message can't be edited")
        return msg

    async def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._editable(params)
        text = self._visible_text(params.get("text", ""), params.get("parse_mode"), MAX_TEXT,
                                  "message text")
        markup = self._check_markup(params.get("reply_markup"))
        if msg.text == text and msg.reply_markup == markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        msg.text = text
        msg.reply_markup = markup
        msg.edited = True
        self._answered_in(msg.chat_id)
        return self._message_dict(msg)

    async def api_editMessageCaption(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._editable(params)
        if msg.media is None:
            raise bad_request("there is no caption in the message to edit")
        caption = self._visible_text(params.get("caption", ""), params.get("parse_mode"),
                                     1024, "message caption")
        if msg.caption == caption:
            raise bad_request("message is not modified")
        msg.caption = caption
        msg.edited = True
        return self._message_dict(msg)

    async def api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if msg.reply_markup == markup:
            raise bad_request("message is not modified")
        msg.reply_markup = markup
        msg.edited = True
        return self._message_dict(msg)

    async def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        cq_id = str(params["callback_query_id"])
        if cq_id in self.callback_answers:
            raise bad_request("query is too old and response timeout expired or query ID is "
                              "invalid")
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.callback_answers[cq_id] = dict(params)
        self._answered_in(self._callback_chat.get(cq_id))
        return True

    def _delete(self, chat: EmuChat, message_id: int) -> bool:
        msg = chat.by_id(message_id)
        if msg is None or msg.deleted:
            return False
        if self.now() - msg.date > DELETE_WINDOW_S:
            return False
        msg.deleted = True
        return True

    async def api_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        msg = chat.by_id(int(params["message_id"]))
        if msg is None or msg.deleted:
            raise bad_request("message to delete not found")
        if not self._delete(chat, int(params["message_id"])):
            raise bad_request("message can't be deleted for everyone")
        return True

    async def api_deleteMessages(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        ids = params["message_ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers must be a list of 1-100 items")
        for mid in ids:
            self._delete(chat, int(mid))
        return True

    async def api_setChatMenuButton(self, params: dict[str, Any]) -> bool:
        return True

    async def api_close(self, params: dict[str, Any]) -> bool:
        return True

    async def api_logOut(self, params: dict[str, Any]) -> bool:
        return True
