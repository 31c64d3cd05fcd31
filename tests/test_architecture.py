"""The code's shape (docs/architecture.md): public APIs of every dependency only, and the
parts importing each other only downwards, without a cycle."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests.architecture import (
    ROOT,
    cycles,
    external_imports,
    import_graph,
    private_uses,
    project_files,
)

# Uses of a dependency's private parts the project accepts: none.
ALLOWED: frozenset[str] = frozenset()

PACKAGES = ("bot", "handlers", "models", "migrations")


def test_no_private_part_of_any_dependency_is_used() -> None:
    found = [str(f) for f in private_uses(project_files())]
    assert [f for f in found if f not in ALLOWED] == []


@pytest.mark.parametrize("source", [
    "from telegram._utils.defaultvalue import DEFAULT_NONE\n",
    "import sqlalchemy._private\n",
    "from asyncio import _get_running_loop\n",
    "from telegram.ext import ExtBot\nclass B(ExtBot):\n    async def f(self):\n"
    "        self._x = 1\n        return await self._post('getMe')\n",
    "async def f(session):\n    return session._async_bind\n",
    "def f(statement):\n    return statement._propagate_attrs\n",
    "from sqlalchemy.dialects.sqlite.base import SQLiteCompiler\n"
    "SQLiteCompiler.get_from_hint_text = lambda self, table, text: text\n",
    "import aiohttp\nsetattr(aiohttp.ClientSession, 'get', None)\n",
    "def f(monkeypatch):\n    monkeypatch.setattr('telegram.Bot.send_message', None)\n",
    "import asyncio\ndef f(coro):\n    return coro.cr_code.co_name == 'write_bytes'\n",
    "def f(fn):\n    return fn.__qualname__ == 'ClientRequest.write_bytes'\n",
    "import asyncio\nasyncio.get_event_loop().set_task_factory(None)\n",
    "import sys\nsys.modules['aiosqlite'] = object()\n",
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "e = create_async_engine('sqlite+aiosqlite://', module=object())\n",
    "def f(loop):\n    return getattr(loop, '_ready')\n",
    # The project has a `_ready` of its own; this one is the event loop's.
    "class Stream:\n    def _ready(self):\n        return True\n"
    "def f(loop):\n    return loop._ready\n",
    "def f(app):\n    type(app.bot).get_me = None\n",
    "def f(app):\n    setattr(app.bot, 'get_me', None)\n",
])
def test_the_check_finds_each_kind_of_private_use(tmp_path: Path, source: str) -> None:
    path = tmp_path / "sample.py"
    path.write_text(source)
    assert private_uses([path], root=tmp_path), source


def test_the_check_leaves_the_projects_own_private_names_alone(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(textwrap.dedent("""
        import asyncio

        class Lock:
            def __init__(self) -> None:
                self._waiters: list[asyncio.Future[None]] = []

            def _wake(self) -> None:
                for waiter in self._waiters:
                    waiter.set_result(None)
    """))
    assert private_uses([path], root=tmp_path) == []


def test_no_import_cycle_counting_type_checking_and_local_imports() -> None:
    assert cycles(import_graph(PACKAGES)) == []


def test_the_cycle_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg.a import x\ndef f():\n    from pkg import a\n")
    assert cycles(import_graph(["pkg"], root=tmp_path)) == [["pkg.a", "pkg.b"]]


def _closure(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def _path(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


GRAPH = import_graph(PACKAGES)


def _part(prefix: str) -> set[str]:
    return {m for m in GRAPH if m == prefix or m.startswith(prefix + ".")}


def test_the_domain_imports_no_telegram_and_no_handlers() -> None:
    reached = _closure(GRAPH, _part("bot.domain"))
    assert {m for m in reached if m.startswith(("bot.telegram", "handlers", "bot.dev"))} \
        == set()
    assert {m for m in reached if "telegram" in external_imports(_path(m))} == set()


def test_the_core_imports_nothing_above_it() -> None:
    reached = _closure(GRAPH, _part("bot.core"))
    assert {m for m in reached if not m.startswith(("bot.core", "models", "migrations"))} \
        == set()
    assert {m for m in reached if "telegram" in external_imports(_path(m))} == set()


def test_the_models_import_nothing_of_the_project() -> None:
    assert {m for m in _part("models") for t in GRAPH[m] if not t.startswith("models")} \
        == set()


def test_the_emulator_imports_nothing_of_the_bot() -> None:
    emulator = _part("bot.dev.emulator")
    assert emulator
    assert {t for m in emulator for t in GRAPH[m] if t not in emulator} == set()


def test_the_running_bot_imports_no_development_tool() -> None:
    running = _part("bot.core") | _part("bot.domain") | _part("bot.telegram") | \
        _part("handlers") | _part("models")
    assert {m for m in _closure(GRAPH, running) if m.startswith("bot.dev")} == set()


def test_the_data_is_reached_one_way() -> None:
    """Statements on the mapped classes, entities from the session: no table reached
    behind its class, no row turned into an entity by hand, no untyped row passed on."""
    found = []
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for marker in (".__table__", "make_transient_to_detached", "Row[Any]"):
            if marker in text:
                found.append(f"{path.relative_to(ROOT)}: {marker}")
    assert found == []


# The project's functions that send, edit, copy or delete in Telegram (or answer a button).
SENDERS = frozenset({
    "send_screen", "edit_screen", "say_to_chat", "keep_for_deletion", "deliver_to_staff",
    "refresh_cards", "delete_messages", "sweep_chat", "delete_now", "answer_button",
    "copy_to_staff", "client_to_staff", "staff_to_client", "copy_waiting", "edit_staff_copy",
    "edit_client_copy", "_say", "_tell_client", "refuse"})


def _waits_on_telegram(call: ast.Call) -> bool:
    """A call of one of `SENDERS`, a button's `answer`, or a Bot API method on a bot."""
    import inspect

    from telegram import Bot

    func = call.func
    if isinstance(func, ast.Name):
        return func.id in SENDERS
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in SENDERS or func.attr == "answer":
        return True
    receiver = ast.unparse(func.value)
    return (receiver == "bot" or receiver.endswith(".bot")) and \
        inspect.iscoroutinefunction(getattr(Bot, func.attr, None))


def waits_on_telegram_in_a_transaction(source: str) -> list[int]:
    """Lines where a call that waits on Telegram is made inside `session.begin()`."""
    found: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AsyncWith) and any(
                "begin(" in ast.unparse(item.context_expr) for item in node.items):
            found += [sub.lineno for sub in ast.walk(node)
                      if isinstance(sub, ast.Call) and _waits_on_telegram(sub)]
    return found


def test_no_write_turn_is_held_while_telegram_is_asked() -> None:
    """SQLite's writes take turns (`bot/core/db.py`): a transaction that waits on Telegram
    holds everyone's writes for a round trip, and one that sends to a client's chat from
    within it (her answer is recorded in a turn of its own) waits for itself for ever: the
    bot writes nothing again. A forged stats button did that once."""
    found = []
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]:
        if "dev" in path.relative_to(ROOT).parts:
            continue
        for line in waits_on_telegram_in_a_transaction(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []


def test_a_send_inside_a_transaction_is_found() -> None:
    source = textwrap.dedent("""
        async def refuse(data, app, context, query, chat_id):
            async with data.sessions() as session, session.begin():
                await say_to_chat(app, chat_id, "no")
                await context.bot.send_message(chat_id, "no")
                await query.answer("no")
                await delivery.keep_for_deletion(app, chat_id, [1])
                await case_service.close(session, case_id=1)  # not Telegram's
            async with data.sessions() as session:
                await say_to_chat(app, chat_id, "fine: no write turn held")
    """)
    assert waits_on_telegram_in_a_transaction(source) == [4, 5, 6, 7]
