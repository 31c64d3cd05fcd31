"""The threat model names the tests that back each mitigation: they must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name.startswith("test_")}


def test_every_test_named_in_the_threat_model_exists() -> None:
    text = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    named = 0
    current = None  # `::test_x` refers to the file named last before it
    for cell in re.findall(r"`([^`]*::[^`]*)`", text):
        for part in re.findall(r"(test_\w+\.py)?::(test_\w+)", cell):
            current = part[0] or current
            assert current, f"no file for {part[1]}"
            path = ROOT / "tests" / current
            assert path.exists(), f"{current} does not exist"
            assert part[1] in _tests_in(path), f"{current}::{part[1]} does not exist"
            named += 1
    assert named >= 30


# A path in a comment, a docstring or a document: `bot/telegram/polling.py`, docs/x.md.
_PATH = re.compile(r"(?<![\w./~-])((?:[\w-]+/)+[\w.-]+\.(?:py|md|toml|json|png|service|ini|lock))"
                   r"(?![\w/])")
_DOC = re.compile(r"(?<![\w./-])(\w[\w-]*\.md)\b")
# A file beside the repository (../shared/...): a fresh clone does not have it.
_OUTSIDE = re.compile(r"(?<![\w.])(\.\./[\w./-]+\.(?:md|py|toml))")


def _cited(text: str) -> set[str]:
    return set(_PATH.findall(text)) | set(_DOC.findall(text)) | set(_OUTSIDE.findall(text))


def test_no_comment_or_document_cites_a_file_that_is_not_in_the_repository() -> None:
    sources = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), ROOT / "pyproject.toml",
               ROOT / "config.example.toml", ROOT / "dev.py",
               *[p for part in ("bot", "handlers", "models", "migrations", "tests", "bench",
                                "deploy")
                 for p in (ROOT / part).rglob("*") if p.suffix in (".py", ".toml", ".service")
                 and "__pycache__" not in p.parts]]
    missing = set()
    for path in sources:
        if path == Path(__file__):
            continue  # its own examples
        for cited in _cited(path.read_text(encoding="utf-8")):
            if cited.startswith("../") or \
                    not any((base / cited).exists() for base in (ROOT, ROOT / "docs", path.parent)):
                missing.add(f"{path.relative_to(ROOT)}: {cited}")
    assert missing == set()


def test_the_citation_check_sees_a_missing_file() -> None:
    assert _cited("as DESIGN.md says (bot/runner.py); see docs/performance.md and "
                  "../shared/reviews/texts-ky.md, texts-ru-en.md §2") == {
        "DESIGN.md", "bot/runner.py", "docs/performance.md", "../shared/reviews/texts-ky.md",
        "texts-ru-en.md"}
