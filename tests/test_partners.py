"""Partner centers by region (issue 19 item 6): a client is offered the ones serving her
region when nobody is on duty and in the services topic; a referral to a partner is an
outcome the figures count; a partner of a region that does not exist stops the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.dev.harness import Harness
from bot.domain import stats as stats_service
from tests.helpers import cases, t
from tests.test_config import run_cli

PARTNERS = [
    {"name": "Osh Crisis Center", "regions": ["osh_city", "osh"], "phone": "+996 3222 00001",
     "hours": "Mon–Fri 09:00–18:00", "services": ["shelter"]},
    {"name": "Naryn Women's Center", "regions": ["naryn"], "phone": "+996 3522 00002"},
]


@pytest.fixture
async def harness(db_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(db_url, clock=clock, partners=PARTNERS)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_nobody_on_duty_names_the_partners_of_her_region_only(harness: Harness) -> None:
    phone = harness.phone("Client", language_code="en")
    await phone.send("/start")
    await harness.settle()
    for label in ("btn_danger_no", "btn_safe_private", "btn_skip", "cat_psych"):
        await phone.press(t(harness, "en", label))
        await harness.settle()
    await phone.press("Osh region")
    await harness.settle()
    for label in ("btn_skip", "contact_chat_now", "btn_send"):
        await phone.press(t(harness, "en", label))
        await harness.settle()
    (case,) = await cases(harness)
    assert case.region == "osh"
    text = phone.text()
    assert t(harness, "en", "nobody_on_duty", number=case.id) in text
    assert "Osh Crisis Center: +996 3222 00001 (Mon–Fri 09:00–18:00)" in text
    assert "Naryn" not in text
    # The services topic names them too, from the region of her request.
    await phone.send("/start")
    await harness.settle()
    await phone.press(t(harness, "en", "btn_info"))
    await harness.settle()
    assert harness.app is not None
    await phone.press(harness.app.bot_data.texts.resource("en", "services").title)
    await harness.settle()
    topic = phone.last().plain()
    assert "Osh Crisis Center" in topic and "Naryn" not in topic


async def test_without_a_region_the_services_topic_lists_every_partner_with_its_regions(
    harness: Harness,
) -> None:
    phone = harness.phone("Client", language_code="ru")
    await phone.send("/start")
    await harness.settle()
    await phone.press(t(harness, "ru", "btn_info"))
    await harness.settle()
    assert harness.app is not None
    await phone.press(harness.app.bot_data.texts.resource("ru", "services").title)
    await harness.settle()
    topic = phone.last().plain()
    assert "Osh Crisis Center (г. Ош, Ошская область)" in topic
    assert "Naryn Women's Center (Нарынская область): +996 3522 00002" in topic


def test_a_referral_to_a_partner_is_counted_in_the_report() -> None:
    assert "partner" in stats_service.SERVICES and "partner" in stats_service.REPORT_SERVICES


def test_a_partner_of_an_unknown_region_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[partners]]\nname = "X"\nregions = ["mars"]\nphone = "+996 312 000000"\n')
    result = run_cli("check", "--config", str(config))
    assert result.returncode != 0
    assert "unknown region 'mars'" in result.stderr and "Traceback" not in result.stderr
    assert Settings.model_validate({"partners": PARTNERS}).partners_for("naryn")[0].name == \
        "Naryn Women's Center"
