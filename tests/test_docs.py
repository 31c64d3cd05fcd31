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
