"""Texts in Kyrgyz, Russian and English, from one editable TOML file per language.

`bot/content/<lang>.toml` holds `[ui]` strings with named `{placeholders}` and the resource
library under `[resources.<id>]`. Texts are Telegram HTML; values filled in are escaped.
Facts (emergency numbers, the hotline) are never written into the files: they come from the
configuration through the placeholders, so a center can correct them in one place.

Why key-based TOML rather than gettext catalogues: most of the text is long editable
content (the resource library), which gettext handles poorly, and keys make the
completeness check across languages exact.
"""

from __future__ import annotations

import html
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import LANGUAGES, Settings

CONTENT_DIR = Path(__file__).parent / "content"
LANGUAGE_NAMES = {"ky": "Кыргызча", "ru": "Русский", "en": "English"}


@dataclass(frozen=True)
class Resource:
    id: str
    title: str
    body: str


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"placeholder {{{key}}} has no value")


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_catalog(language: str, directory: Path = CONTENT_DIR) -> dict[str, Any]:
    with (directory / f"{language}.toml").open("rb") as fh:
        return tomllib.load(fh)


class Texts:
    """All languages' texts, with the configuration's facts filled in."""

    def __init__(self, settings: Settings, directory: Path = CONTENT_DIR) -> None:
        self.settings = settings
        self.catalogs = {lang: load_catalog(lang, directory) for lang in LANGUAGES}
        org = settings.organization
        em = settings.emergency
        self.facts: dict[str, str] = {
            "org": org.name,
            "hotline": org.hotline,
            "hotline_hours": org.hotline_hours,
            "police": em.police,
            "ambulance": em.ambulance,
            "fire": em.fire,
            "unified": em.unified,
            "children_line": em.children,
            "office_open": org.office_open.strftime("%H:%M"),
        }
        self.resource_ids: list[str] = list(self.catalogs["en"].get("resources", {}))
        # Escaped once: every screen fills these into a dozen texts.
        self._escaped_facts = {k: html.escape(v, quote=False) for k, v in self.facts.items()}

    def lang(self, language: str | None) -> str:
        if language in LANGUAGES:
            return str(language)
        return self.settings.organization.default_language

    def t(self, language: str | None, key: str, **values: Any) -> str:
        """The UI text `key` in `language`, facts and escaped `values` filled in."""
        lang = self.lang(language)
        template = self.catalogs[lang]["ui"].get(key)
        if template is None:
            template = self.catalogs["en"]["ui"][key]
        if not values:
            return str(template).format_map(_SafeDict(self._escaped_facts))
        escaped = {k: html.escape(str(v), quote=False) for k, v in values.items()}
        return str(template).format_map(_SafeDict({**self._escaped_facts, **escaped}))

    def resource(self, language: str | None, resource_id: str) -> Resource:
        lang = self.lang(language)
        item = self.catalogs[lang]["resources"][resource_id]
        facts = self._escaped_facts
        return Resource(
            resource_id,
            str(item["title"]).format_map(_SafeDict(facts)),
            str(item["body"]).format_map(_SafeDict(facts)),
        )

    def region_name(self, language: str | None, code: str | None) -> str:
        region = self.settings.region(code)
        if region is None:
            return "—"
        return region.name(self.lang(language))
