"""The code's shape (docs/architecture.md): public APIs of every dependency only, and the
parts importing each other only downwards, without a cycle."""

from __future__ import annotations

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
