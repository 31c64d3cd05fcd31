"""Random updates of every kind a client or a stranger can send, through the real handlers:
no unhandled exception, a consistent database, and an answer to every person."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.dev.harness import Harness
from bot.domain.flow import STEPS

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("SEZIM_FUZZ_EXAMPLES", "40"))

odd_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0,
    max_size=300,
) | st.sampled_from([
    "/start", "/exit", "/help", "/forget", "/language", "/autodelete", "/queue", "/stats",
    "/close 1", "/duty on", "/staff add 1 x admin", "/start@other_bot", "/", "//", "",
    "он убьёт меня", "өлтүрөм деди", "\u202eevil\u202c", "a\u200bb", "🆘" * 50,
    "x" * 4096, "<b>not html</b>", "&amp;", "+996 555 123 456", "0555123456",
])
callback_data = st.text(min_size=0, max_size=70) | st.sampled_from([
    "c:exit", "c:danger:yes", "c:danger:no", "c:info", "c:lang:ky", "c:write:yes",
    "c:back", "c:skip", "c:ok", "c:q:1:y", "c:reg:naryn", "c:res:services", "c:end",
    "c:rate:5", "c:fg:yes", "s:take:1", "s:close:1:legal", "s:st:this_year:region",
    "c:" + "a" * 62, "c:lang:", "c::", "s:", "s:take:-1", "s:take:99999999999999999999",
])
media_kind = st.sampled_from(["sticker", "voice", "photo", "location", "contact", "document",
                              "video"])


@st.composite
def an_update(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["text", "text", "text", "callback", "callback", "media",
                                 "caption", "edited", "group", "channel", "member", "bot",
                                 "inline"]))
    return {"kind": kind, "text": draw(odd_text), "data": draw(callback_data),
            "media": draw(media_kind), "who": draw(st.integers(0, 2))}


async def _play(h: Harness, plan: list[dict[str, Any]]) -> None:
    emu = h.emulator
    people = [h.phone(f"P{i}", language_code=lang) for i, lang in
              enumerate(("ru", "ky", None))]
    expect_answer: set[int] = set()
    callbacks: list[str] = []
    for item in plan:
        phone = people[item["who"]]
        kind = item["kind"]
        if kind == "text":
            await phone.send(item["text"] or "?")
            expect_answer.add(phone.id)
        elif kind == "callback":
            target = phone.bot_messages()[-1] if phone.bot_messages() else None
            if target is None:
                await phone.send("/start")
                await h.settle()
                target = phone.last()
            callbacks.append(await phone.press_data(target, item["data"]))
        elif kind == "media":
            if item["media"] == "location":
                await phone.send_location()
            elif item["media"] == "contact":
                await phone.send_contact(item["text"][:20] or "+996555000000")
            else:
                await phone.send_media(item["media"])
            expect_answer.add(phone.id)
        elif kind == "caption":
            await phone.send_media("photo", caption=item["text"][:1024])
            expect_answer.add(phone.id)
        elif kind == "edited":
            sent = await phone.send("first")
            await h.settle()
            await phone.edit(sent, item["text"] or "edited")
            expect_answer.add(phone.id)
        elif kind == "group":
            await emu.raw_update({"message": {
                "message_id": 1, "date": 0, "text": item["text"] or "x",
                "chat": {"id": -1000 - item["who"], "type": "supergroup", "title": "g"},
                "from": phone.user.as_dict(),
                "new_chat_members": [phone.user.as_dict()]}})
        elif kind == "channel":
            await emu.raw_update({"channel_post": {
                "message_id": 1, "date": 0, "text": item["text"] or "x",
                "chat": {"id": -100500, "type": "channel", "title": "c"}}})
        elif kind == "member":
            await emu.raw_update({"my_chat_member": {
                "chat": {"id": phone.id, "type": "private", "first_name": "x"},
                "from": phone.user.as_dict(), "date": 0,
                "old_chat_member": {"status": "member", "user": {"id": emu.bot_id,
                                                                 "is_bot": True,
                                                                 "first_name": "b"}},
                "new_chat_member": {"status": "kicked", "until_date": 0,
                                    "user": {"id": emu.bot_id, "is_bot": True,
                                             "first_name": "b"}}}})
        elif kind == "bot":
            await emu.raw_update({"message": {
                "message_id": 1, "date": 0, "text": "/start",
                "chat": {"id": phone.id, "type": "private", "first_name": "x"},
                "from": {"id": 42, "is_bot": True, "first_name": "spam"}}})
        else:
            await emu.raw_update({"inline_query": {
                "id": "1", "from": phone.user.as_dict(), "query": item["text"][:256],
                "offset": ""}})
    await h.settle(timeout=60)
    for phone in people:
        if phone.id in expect_answer:
            assert phone.all_bot_messages(), "a person got no answer"
    for cq in callbacks:
        assert cq in emu.callback_answers, "a button press was not answered"


class ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated empty database, copied for every example (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("fuzz") / "template.db"

    async def make() -> None:
        h = Harness(f"sqlite+aiosqlite:///{path}")
        await h.start()
        await h.stop()

    asyncio.run(make())
    with sqlite3.connect(path) as conn:
        # Each example runs with a key of its own: an empty database takes any key.
        conn.execute("DELETE FROM key_check")
    return path


def _consistent(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM cases WHERE appeal_id IS NULL "
                            "AND purged_at IS NULL").fetchone()[0] == 0
        steps = {row[0] for row in conn.execute("SELECT step FROM clients")}
        assert steps <= STEPS


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=st.lists(an_update(), min_size=1, max_size=8))
def test_random_updates_never_break_the_bot(plan: list[dict[str, Any]], template_db: Path,
                                            tmp_path: Path) -> None:
    db = tmp_path / f"fuzz-{os.getpid()}-{id(plan)}.db"
    shutil.copy(template_db, db)
    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)

    async def run() -> None:
        h = Harness(f"sqlite+aiosqlite:///{db}")
        await h.start()
        try:
            await _play(h, plan)
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    finally:
        logging.getLogger().removeHandler(counter)
    assert [r.getMessage() for r in counter.records] == []
    _consistent(db)
    db.unlink()



