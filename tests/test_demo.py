"""The README's first command: the demo plays end to end (the real process), and its
transcript shows each message after the one that caused it."""

from __future__ import annotations

from tests.test_config import run_cli


def test_the_demo_plays_the_whole_day_in_order() -> None:
    result = run_cli("demo", "--language", "en")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Another specialist (psychologist) continues the conversation with you" in out
    assert "no message text was stored" in out
    step = out[out.index("── The lawyer answers by replying to it"):]
    step = step[:step.index("\n── ", 5)]
    assert step.index("[lawyer Aigul writes]") < step.index("[bot → client]")
    assert "Traceback" not in result.stderr
