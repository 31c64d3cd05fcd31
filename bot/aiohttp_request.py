"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

Over loopback PTB's httpx transport is the ceiling (DESIGN.md: an aiohttp `BaseRequest`
did 1.9 times the updates/s of stock PTB); bench/load.py measures both (`[telegram]
transport`). Errors map to PTB's own: time-outs to `TimedOut`, everything else on the way
to `NetworkError`, so retries and the error handler work the same.

JSON both ways by orjson (several times faster than the standard library's on the
requests and answers the bot makes for every update). An answer that is not JSON is an
error that names nothing of its content: it could hold a message's text.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any

import aiohttp
import orjson
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import JSONDict, ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}
log = logging.getLogger(__name__)


# aiohttp writes a request's body in a task of its own. From Python 3.12 that task starts
# eagerly (the body leaves with the headers, at once); on 3.11 it is an ordinary task and
# waits for everything else ready on the event loop first. Under load that was most of the
# time from an answer's call to its arrival: 25 ms for a request for help at 200 people
# against 0.3 ms eagerly (bench/load.py, aiohttp's request tracing).
_BODY_WRITER = "ClientRequest.write_bytes"


@types.coroutine
def _go_on(coro: Coroutine[Any, Any, Any], waiting_for: Any) -> Generator[Any, Any, Any]:
    """Drive `coro` on from where its first step stopped, as its task would have."""
    while True:
        try:
            sent = yield waiting_for
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - handed on to the coroutine
            try:
                waiting_for = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                waiting_for = coro.send(sent)
            except StopIteration as done:
                return done.value


async def _rest_of(coro: Coroutine[Any, Any, Any], waiting_for: Any) -> Any:
    return await _go_on(coro, waiting_for)


async def _result(value: Any) -> Any:
    return value


async def _raising(exc: Exception) -> Any:
    raise exc


def _eager_body_writes(loop: asyncio.AbstractEventLoop, coro: Any,
                       context: contextvars.Context | None = None) -> asyncio.Task[Any]:
    """A task factory: aiohttp's body writes take their first step at once (Python 3.12's
    eager start, for this one coroutine); every other task is made as usual."""
    if getattr(coro, "__qualname__", "") != _BODY_WRITER:
        return asyncio.Task(coro, loop=loop, context=context)  # None: a copy, as usual
    # The first step in the task's own context, as an eager task's is.
    context = context or contextvars.copy_context()
    try:
        waiting_for = context.run(coro.send, None)
    except StopIteration as done:
        coro = _result(done.value)
    except Exception as exc:  # the task holds it, as an eager task's would
        coro = _raising(exc)
    else:
        coro = _rest_of(coro, waiting_for)
    return asyncio.Task(coro, loop=loop, context=context)


def eager_body_writes() -> None:
    """On Python 3.11, let aiohttp's request bodies leave with their headers (the running
    loop's task factory, unless it has one already)."""
    loop = asyncio.get_running_loop()
    if sys.version_info < (3, 12) and loop.get_task_factory() is None:
        loop.set_task_factory(_eager_body_writes)


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one shared `aiohttp.ClientSession`."""

    def __init__(self, *, connection_pool_size: int = 100, read_timeout: float = 15.0,
                 connect_timeout: float = 5.0, write_timeout: float = 15.0) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        eager_body_writes()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            parsed: JSONDict = orjson.loads(payload)
        except orjson.JSONDecodeError:
            try:  # invalid UTF-8 inside: read it as PTB does, with replacements
                parsed = orjson.loads(payload.decode("utf-8", "replace"))
            except orjson.JSONDecodeError as exc:
                log.error("the Bot API answered with something that is not JSON (%d bytes)",
                          len(payload))
                raise TelegramError("Invalid server response") from exc
        return parsed

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) \
            else connect_timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)
        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if request_data.contains_files:
                form = aiohttp.FormData()
                for key, value in request_data.json_parameters.items():
                    form.add_field(key, value)
                for name, part in request_data.multipart_data.items():
                    filename, content, mimetype = part[0], part[1], part[2] if len(part) > 2 \
                        else None
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            else:
                # One JSON body (the Bot API takes JSON): cheaper to build than a form.
                data = orjson.dumps(request_data.parameters)
                headers = _JSON
        try:
            async with self._session.request(method, url, data=data, timeout=timeout,
                                             headers=headers) as resp:
                return resp.status, await resp.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
