"""The danger-word check measured on labelled phrases (issue 19 item 7).

`tests/data/danger_eval.toml`: at least 150 phrases per language (danger from someone,
self-harm, harmless look-alikes; Kyrgyz also typed with Russian and Latin letters), written
without looking at the rules. The check must find 95% of danger and of self-harm and raise no
false emergency on the harmless ones. `tests/data/danger_heldout.toml` was written the same
way and never tuned on: its figures are printed (they say how the rules do on phrases nobody
fitted them to) but hold no floor. Run `python -m tests.test_danger_eval` for the table that
docs/content-notes.md quotes, with and without the Russian dictionary forms.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.domain.danger import Signal, check, check_with, lemmas, words_as_typed

DATA = Path(__file__).parent / "data"
EXPECTED = {"danger": Signal.DANGER, "self_harm": Signal.SELF_HARM, "harmless": Signal.NONE}
LANGUAGES = ("ky", "ru", "en")
RECALL_FLOOR = 0.95


def phrases(name: str) -> dict[str, dict[str, list[str]]]:
    with (DATA / name).open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class Score:
    danger: float        # share of danger phrases answered as danger
    self_harm: float     # share of self-harm phrases answered as self-harm
    false_alarms: int    # harmless phrases answered as danger or self-harm
    harmless: int
    missed: tuple[str, ...]

    def line(self, lang: str) -> str:
        return (f"{lang}: danger recall {self.danger:.2f}, self-harm recall {self.self_harm:.2f}, "
                f"false alarms {self.false_alarms}/{self.harmless}")


def score(data: dict[str, list[str]], judge: Callable[[str], Signal] = check) -> Score:
    missed = tuple(f"{cls}: {text}" for cls, want in EXPECTED.items()
                   for text in data[cls] if judge(text) is not want)
    def recall(cls: str) -> float:
        return sum(judge(t) is EXPECTED[cls] for t in data[cls]) / len(data[cls])
    alarms = sum(judge(t) is not Signal.NONE for t in data["harmless"])
    return Score(recall("danger"), recall("self_harm"), alarms, len(data["harmless"]), missed)


def test_the_evaluation_set_is_big_enough_and_covers_how_kyrgyz_is_typed() -> None:
    data = phrases("danger_eval.toml")
    for lang in LANGUAGES:
        assert sum(len(data[lang][cls]) for cls in EXPECTED) >= 150, lang
        assert min(len(data[lang][cls]) for cls in EXPECTED) >= 40, lang
    ky = [t for cls in EXPECTED for t in data["ky"][cls]]
    latin = [t for t in ky if any("a" <= c <= "z" for c in t)]
    russian_letters = [t for t in ky if not latin.count(t) and not set(t) & set("өүң")
                       and any("а" <= c <= "я" for c in t)]
    assert len(latin) >= 30 and len(russian_letters) >= 30


@pytest.mark.parametrize("lang", LANGUAGES)
def test_danger_and_self_harm_are_found_and_nothing_harmless_raises_an_alarm(lang: str) -> None:
    result = score(phrases("danger_eval.toml")[lang])
    print(result.line(lang))
    assert result.danger >= RECALL_FLOOR, result.missed
    assert result.self_harm >= RECALL_FLOOR, result.missed
    assert result.false_alarms == 0, result.missed


@pytest.mark.parametrize("lang", LANGUAGES)
def test_held_out_phrases_are_measured(lang: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No floor: printed so a change that helps the tuned set and hurts the rest shows."""
    result = score(phrases("danger_heldout.toml")[lang])
    with capsys.disabled():
        print(f"\nheld out, {result.line(lang)}")
    assert 0 < result.danger <= 1


def test_the_russian_dictionary_forms_are_used() -> None:
    # One rule for «избить» meets every form of it; typed as is, a new form is missed.
    assert lemmas("он меня изобьёт когда вернётся".replace("ё", "е")).split()[2] == "избить"
    assert check("он меня избивал всю ночь") is Signal.DANGER


def main() -> None:
    for name in ("danger_eval.toml", "danger_heldout.toml"):
        data = phrases(name)
        print(name)
        for label, judge in (("with pymorphy3", check),
                             ("words as typed", lambda t: check_with(t, words_as_typed))):
            for lang in LANGUAGES:
                print(f"  {label:15} {score(data[lang], judge).line(lang)}")


if __name__ == "__main__":
    main()
