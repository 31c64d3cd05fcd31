"""The client flow as a table (bot/domain/flow.py): each step has its screen, each kind of her
buttons its handler, the kinds offered anywhere are marked there; nothing dispatches on a
formatted name, and only the flow's module writes her step."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import pytest

from bot.core.clock import FakeClock
from bot.core.config import LANGUAGES, Settings
from bot.core.crypto import Crypto
from bot.core.i18n import Texts
from bot.domain import callbacks as cb
from bot.domain import flow as flow_module
from bot.domain.clients import ClientRecord
from bot.domain.flow import ACTIONS, RENDERERS, STEPS, Flow, Step
from tests.architecture import ROOT, project_files

SETTINGS = Settings()
TEXTS = Texts(SETTINGS)


def _flow(step: str, lang: str = "en", **data: object) -> Flow:
    client = ClientRecord(id=1, language=lang, step=step, step_data=dict(data),
                          menu_message_id=None, shared_device=None, auto_delete_minutes=None)
    return Flow(session=None, client=client, telegram_id=1,  # type: ignore[arg-type]
                texts=TEXTS, settings=SETTINGS, crypto=Crypto("x" * 40),
                now=FakeClock(datetime(2026, 11, 26, 12, tzinfo=UTC)).now())


def test_every_step_has_its_screen_and_every_kind_of_her_buttons_its_handler() -> None:
    assert set(RENDERERS) == STEPS == set(Step)
    theirs = {k.cls for k in cb.TABLE if k.prefix.startswith("c:")}
    assert set(ACTIONS) == theirs
    assert all(action.kind is kind for kind, action in ACTIONS.items())


def test_the_kinds_offered_anywhere_are_marked_in_the_table() -> None:
    anywhere = {kind for kind, action in ACTIONS.items() if action.anywhere(Step.HOME)}
    assert anywhere == {cb.Exit, cb.ChooseCodeWord, cb.RaiseUrgency, cb.CheckInTime,
                        cb.CheckInReply}
    # In its own step the code word's offer is not on the menu (Skip is): it is expired.
    assert not ACTIONS[cb.ChooseCodeWord].anywhere(Step.CODE_WORD)
    assert all(ACTIONS[cb.Exit].anywhere(step) for step in Step)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_button_of_every_screen_is_one_of_her_kinds(lang: str) -> None:
    for step in Step:
        screen = _flow(step, lang, q=11, res="legal_rights", case=1).render()
        for row in screen.buttons:
            for button in row:
                data = cb.decode(button.data)
                assert data is not None and type(data) in ACTIONS, (step, button.data)
                assert len(button.data.encode("utf-8")) <= cb.MAX_BYTES


async def test_a_tap_counts_only_if_her_menu_offers_it_or_it_is_offered_anywhere() -> None:
    expired = TEXTS.t("en", "expired")
    home = _flow(Step.HOME)
    for data, on_menu in [(None, True), (cb.Take(1), True), (cb.Send(), True),
                          (cb.Danger("no"), False), (cb.Answer(1, yes=True), True)]:
        reply = await home.on_button(data, on_menu=on_menu)
        assert reply.toast == expired, data
        assert home.client.step == Step.HOME
    reply = await home.on_button(cb.Danger("no"), on_menu=True)
    assert reply.toast is None and home.client.step == Step.SAFETY
    # The code word's offer, tapped on a notice (not her menu), whatever her step.
    library = _flow(Step.LIBRARY)
    reply = await library.on_button(cb.ChooseCodeWord(), on_menu=False)
    assert reply.toast is None and library.client.step == Step.CODE_WORD
    reply = await library.on_button(cb.ChooseCodeWord(), on_menu=True)
    assert reply.toast == expired


def _formatted_getattr(tree: ast.AST) -> list[int]:
    """Lines of `getattr(x, <a name built at run time>)`."""
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == "getattr" and len(n.args) >= 2
            and not isinstance(n.args[1], ast.Constant)]


def test_nothing_in_the_flow_or_the_handlers_dispatches_on_a_built_name() -> None:
    files = [ROOT / "bot" / "domain" / "flow.py", *sorted((ROOT / "handlers").glob("*.py"))]
    assert {str(f.relative_to(ROOT)): lines for f in files
            if (lines := _formatted_getattr(ast.parse(f.read_text(encoding="utf-8"))))} == {}


# Who else writes `clients.step` / `step_data`, and why: none of them is staff's code.
STEP_WRITERS = {
    "bot/domain/flow.py",  # the flow itself, and `ask_for_rating` for a case staff closed
    "bot/domain/clients.py",  # stores the record the flow changed; creates a new one
    "bot/domain/retention.py",  # /forget and the idle reset start her afresh ("new")
    "bot/core/keys.py",  # a key rotation re-encrypts a pending callback number
}


def _writes_step(tree: ast.AST) -> list[int]:
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(isinstance(t, ast.Attribute) and t.attr in ("step", "step_data")
                   for t in targets):
                found.append(n.lineno)
        elif isinstance(n, ast.Call) and any(k.arg in ("step", "step_data")
                                             for k in n.keywords):
            found.append(n.lineno)
        elif isinstance(n, ast.Dict) and any(isinstance(k, ast.Constant) and
                                             k.value in ("step", "step_data")
                                             for k in n.keys):
            found.append(n.lineno)
    return found


def test_only_the_flow_writes_her_step_and_staffs_code_never() -> None:
    writers = {str(path.relative_to(ROOT)) for path in project_files()
               if path.parts[len(ROOT.parts)] != "tests"
               and _writes_step(ast.parse(path.read_text(encoding="utf-8")))}
    assert writers <= STEP_WRITERS
    assert not {w for w in writers if w.startswith("handlers/")}


def test_the_step_check_finds_a_write() -> None:
    for source in ("client.step = 'rate'\n", "update(t).values(step='rate')\n",
                   "session.execute(q, {'step': 'rate'})\n", "c.step_data = {}\n"):
        assert _writes_step(ast.parse(source)), source
    assert flow_module.ask_for_rating.__module__ == "bot.domain.flow"
