"""The sending limiter: Telegram's limits kept, the most urgent first, retries bounded."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.core.config import Settings
from bot.telegram.app import build_application
from bot.telegram.ratelimit import NORMAL, URGENT, PriorityRateLimiter


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []
        self.failures: list[Exception] = []

    def call(self, label: str) -> Any:
        async def send() -> bool:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append((label, time.monotonic()))
            return True
        return send


async def _send(limiter: PriorityRateLimiter, rec: Recorder, label: str, chat: int,
                priority: int = NORMAL, endpoint: str = "sendMessage") -> Any:
    return await limiter.process_request(rec.call(label), (), {}, endpoint,
                                         {"chat_id": chat}, priority)


async def test_urgent_messages_overtake_a_queue_of_ordinary_ones() -> None:
    limiter = PriorityRateLimiter(per_second=20, per_chat_per_second=0)
    await limiter.initialize()
    rec = Recorder()
    try:
        ordinary = [asyncio.create_task(_send(limiter, rec, f"o{i}", 1000 + i))
                    for i in range(40)]
        await asyncio.sleep(0.2)
        already = len(rec.sent)
        assert limiter.waiting > 10  # a queue has formed
        urgent = asyncio.create_task(_send(limiter, rec, "EMERGENCY", 1, URGENT))
        await asyncio.gather(urgent, *ordinary)
    finally:
        await limiter.shutdown()
    order = [label for label, _ in rec.sent]
    # Sent with the very next slot, ahead of every ordinary message still waiting.
    assert order.index("EMERGENCY") <= already + 1, (already, order)
    elapsed = rec.sent[-1][1] - rec.sent[0][1]
    assert elapsed >= (41 - 20) / 20 * 0.9  # the global rate was kept (a 1 s burst allowed)


async def test_one_chat_gets_about_one_message_a_second_after_a_short_burst() -> None:
    limiter = PriorityRateLimiter(per_second=0, per_chat_per_second=5)
    rec = Recorder()
    await asyncio.gather(*(_send(limiter, rec, f"m{i}", 7) for i in range(6)))
    times = [t for _, t in rec.sent]
    assert times[2] - times[0] < 0.05  # the burst of three goes at once
    assert times[5] - times[0] >= 3 / 5 * 0.9  # then one per interval
    # Another chat is not held back by the first.
    start = time.monotonic()
    await _send(limiter, rec, "other", 8)
    assert time.monotonic() - start < 0.05


async def test_answers_and_deletions_are_not_limited() -> None:
    limiter = PriorityRateLimiter(per_second=1, per_chat_per_second=1)
    await limiter.initialize()
    rec = Recorder()
    try:
        start = time.monotonic()
        await asyncio.gather(*(_send(limiter, rec, "a", 5, endpoint="answerCallbackQuery")
                               for _ in range(10)))
        assert time.monotonic() - start < 0.2
    finally:
        await limiter.shutdown()


async def test_retry_after_is_waited_out_and_errors_retried_but_not_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.telegram.ratelimit.RETRY_DELAYS", (0.01, 0.01, 0.01, 0.01))
    limiter = PriorityRateLimiter(per_second=0, per_chat_per_second=0)
    rec = Recorder()
    rec.failures = [RetryAfter(1), NetworkError("Bad Gateway")]
    start = time.monotonic()
    assert await _send(limiter, rec, "x", 1) is True
    assert time.monotonic() - start >= 1.0
    assert [label for label, _ in rec.sent] == ["x"]  # delivered once
    rec.failures = [BadRequest("chat not found")]
    with pytest.raises(BadRequest):
        await _send(limiter, rec, "y", 1)
    rec.failures = [TimedOut()]
    with pytest.raises(TimedOut):  # may have been carried out: not sent twice
        await _send(limiter, rec, "z", 1)
    rec.failures = [NetworkError("down")] * 10
    with pytest.raises(NetworkError):
        await _send(limiter, rec, "w", 1)


async def test_priority_survives_ptbs_bot_methods(harness: object) -> None:
    """PTB drops falsy rate_limit_args: the urgent priority must reach the limiter."""
    from bot.dev.harness import Harness
    from bot.domain.screens import Screen
    from bot.telegram.delivery import send_screen

    assert isinstance(harness, Harness) and harness.app is not None
    seen: list[int | None] = []
    limiter = harness.app.bot.rate_limiter
    assert isinstance(limiter, PriorityRateLimiter)
    original = limiter.process_request

    async def spy(callback: Any, args: Any, kwargs: Any, endpoint: str, data: Any,
                  rate_limit_args: int | None) -> Any:
        if endpoint == "sendMessage":
            seen.append(rate_limit_args)
        return await original(callback, args, kwargs, endpoint, data, rate_limit_args)

    limiter.process_request = spy  # type: ignore[method-assign]
    phone = harness.phone("Aida")
    await send_screen(harness.app, phone.id, Screen("help is coming", urgent=True))
    await send_screen(harness.app, phone.id, Screen("ordinary"))
    assert seen == [URGENT, NORMAL]


def test_an_answer_that_is_not_json_is_an_error_that_logs_none_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PTB's own parser logs the whole answer when it is not JSON; an answer may carry a
    message's text, so ours names only its size."""
    from telegram.error import TelegramError

    from bot.telegram.updates import SezimRequest

    assert SezimRequest.parse_json_payload(
        '{"ok": true, "result": {"text": "Он снова кричал \udcff"}}'.encode(
            "utf-8", "surrogateescape")) == {"ok": True, "result": {"text": "Он снова кричал �"}}
    with pytest.raises(TelegramError):
        SezimRequest.parse_json_payload("<html>Он снова кричал</html>".encode())
    assert "кричал" not in caplog.text
    assert "not JSON" in caplog.text


async def test_sends_side_by_side_all_finish_and_the_first_error_is_raised() -> None:
    """One failed send (a blocked chat) never stops the others; the first goes out at
    once, before anything else waiting for the loop."""
    from bot.telegram.delivery import side_by_side

    done: list[str] = []

    async def send(label: str, fail: bool = False) -> None:
        done.append(f"{label} started")
        await asyncio.sleep(0)
        if fail:
            raise BadRequest(f"{label} refused")
        done.append(f"{label} sent")

    async def elsewhere() -> None:
        done.append("other work")

    other = asyncio.create_task(elsewhere())  # ready before the sends begin
    with pytest.raises(BadRequest, match="her card refused"):
        await side_by_side(send("her screen"), send("her card", fail=True), send("answer"))
    assert done[0] == "her screen started"  # not behind the other ready work
    assert other.done()
    assert {"her screen sent", "answer sent"} <= set(done)


async def test_a_burst_of_requests_does_not_queue_for_a_connection(tmp_path: Path) -> None:
    """A request for help sends a card to every specialist on duty while other people are
    answered: none of those requests waits for a free connection behind the others (over
    a real network, each such wait is a round trip)."""
    burst = 100
    arrived = 0
    in_at_first_answer: list[int] = []
    everyone_in = asyncio.Event()

    async def bot_api(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived == burst:
            everyone_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone_in.wait(), 3)
        if not in_at_first_answer:
            in_at_first_answer.append(arrived)
        return web.json_response({"ok": True, "result": True})

    api = web.Application()
    api.router.add_post("/{path:.*}", bot_api)
    server = TestServer(api, host="127.0.0.1")
    await server.start_server()
    settings = Settings.model_validate({
        "telegram": {"base_url": str(server.make_url("/bot")), "token": "1:T"},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'sezim.db'}"},
        "security": {"secret_key": secrets.token_urlsafe(48)}})
    request = build_application(settings, token="1:T").bot.request
    await request.initialize()
    try:
        await asyncio.gather(*(request.post(str(server.make_url("/bot1:T/answerCallbackQuery")),
                                            None) for _ in range(burst)))
    finally:
        await request.shutdown()
        await server.close()
    # All of them were at the Bot API before the first was answered.
    assert in_at_first_answer == [burst]
