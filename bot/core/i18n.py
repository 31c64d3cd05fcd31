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

from bot.core.config import LANGUAGES, ConfigError, Settings

CONTENT_DIR = Path(__file__).parent.parent / "content"
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


FACTS = ("org", "hotline", "hotline_hours", "police", "ambulance", "fire", "unified",
         "children_line", "office_open", "kept_days", *("help_terms", "club_55"))
TOPIC_TABLES = ("resources", "replies")
# Facts said in the reader's language, from texts chosen by the configuration: "free" and
# the 55+ club only where [organization] says the center offers them.
LANGUAGE_FACTS = ("help_terms", "club_55")


def load_catalog(language: str, directory: Path = CONTENT_DIR) -> dict[str, Any]:
    path = directory / f"{language}.toml"
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _placeholders_of(template: object, where: str) -> set[str]:
    if not isinstance(template, str):
        raise ConfigError(f"{where}: must be a text in quotes")
    try:
        return placeholders(template)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc} (write {{{{ and }}}} for a brace itself)") from None


def check_catalogs(catalogs: dict[str, dict[str, Any]], origin: dict[str, str]) -> None:
    """Every text in every language, every placeholder one the bot fills in, or
    ConfigError naming the file and key. The shipped English texts say which placeholders
    each key has; facts (the numbers, the center's name) may be used in any text.
    `origin[lang]`: the file (or files) the language came from, for the message."""
    reference = load_catalog("en")
    known = {key: placeholders(str(value)) | set(FACTS)
             for key, value in reference["ui"].items()}
    for lang in LANGUAGES:
        catalog = catalogs[lang]
        ui = catalog.get("ui")
        if not isinstance(ui, dict):
            raise ConfigError(f"{origin[lang]}: the [ui] table is missing")
        for key in reference["ui"]:
            if key not in ui:
                raise ConfigError(f"{origin[lang]}: [ui] {key} is missing")
        for key, template in ui.items():
            where = f"{origin[lang]}: [ui] {key}"
            if key not in known:
                raise ConfigError(f"{where}: not a text the bot has (a typo in the name?)")
            unknown = sorted(_placeholders_of(template, where) - known[key])
            if unknown:
                may = ", ".join("{" + name + "}" for name in sorted(known[key]))
                raise ConfigError(f"{where}: unknown placeholder {{{unknown[0]}}} (this text "
                                  f"may use {may})")
        # The library's topics and the specialists' quick replies: a title, a body.
        for table in TOPIC_TABLES:
            items = catalog.get(table, {})
            for rid in reference.get(table, {}):
                if rid not in items:
                    raise ConfigError(f"{origin[lang]}: [{table}.{rid}] is missing")
            for rid, item in items.items():
                for field in ("title", "body"):
                    where = f"{origin[lang]}: [{table}.{rid}] {field}"
                    if not isinstance(item, dict) or field not in item:
                        raise ConfigError(f"{where} is missing")
                    unknown = sorted(_placeholders_of(item[field], where) - set(FACTS))
                    if unknown:
                        raise ConfigError(f"{where}: unknown placeholder {{{unknown[0]}}}")


def load_catalogs(override: Path | None = None) -> dict[str, dict[str, Any]]:
    """The shipped texts, with the center's own from `override` (`[content] dir`) laid
    over them key by key: an edited text lives outside the checkout, so an upgrade never
    meets it, and a text it lacks comes from the shipped file. Checked before use."""
    catalogs = {lang: load_catalog(lang) for lang in LANGUAGES}
    origin = {lang: str(CONTENT_DIR / f"{lang}.toml") for lang in LANGUAGES}
    if override is not None:
        if not override.is_dir():
            raise ConfigError(f"[content] dir: {override} is not a directory")
        for lang in LANGUAGES:
            if not (override / f"{lang}.toml").exists():
                continue
            own = load_catalog(lang, override)
            origin[lang] = str(override / f"{lang}.toml")
            merged = catalogs[lang]
            for key, value in own.get("ui", {}).items():
                merged["ui"][key] = value
            for table in TOPIC_TABLES:
                for rid, item in own.get(table, {}).items():
                    base = merged.setdefault(table, {}).get(rid, {})
                    merged[table][rid] = {**base, **item} if isinstance(item, dict) else item
            unknown_tables = sorted(set(own) - {"ui", *TOPIC_TABLES})
            if unknown_tables:
                raise ConfigError(f"{origin[lang]}: unknown table [{unknown_tables[0]}]")
    check_catalogs(catalogs, origin)
    return catalogs


class Texts:
    """All languages' texts, with the configuration's facts filled in."""

    def __init__(self, settings: Settings, directory: Path = CONTENT_DIR) -> None:
        self.settings = settings
        if directory == CONTENT_DIR:
            self.catalogs = load_catalogs(settings.content.dir)
        else:
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
            # How long her phone number is kept after her case closes (the purge's days).
            "kept_days": str(settings.retention.days_after_close),
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

    def plural(self, language: str | None, key: str, n: int) -> str:
        """The form of the word `key` ("one|few|many" forms, "|"-separated) that goes
        with the number `n`: Russian has three, English two, Kyrgyz one."""
        forms = self.t(language, key).split("|")
        lang = self.lang(language)
        if lang == "ru" and len(forms) == 3:
            if n % 10 == 1 and n % 100 != 11:
                return forms[0]
            if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
                return forms[1]
            return forms[2]
        if len(forms) >= 2:
            return forms[0] if n == 1 else forms[1]
        return forms[0]

    def language_facts(self, language: str | None) -> dict[str, str]:
        org = self.settings.organization
        return {
            "help_terms": self.t(language, "help_free" if org.free_of_charge
                                 else "help_confidential"),
            "club_55": self.t(language, "club_55_line") if org.club_55 else "",
        }

    def resource(self, language: str | None, resource_id: str) -> Resource:
        return self._topic("resources", language, resource_id)

    def _topic(self, table: str, language: str | None, item_id: str) -> Resource:
        """A title and a body from `[table.item_id]`, facts filled in."""
        lang = self.lang(language)
        item = self.catalogs[lang][table][item_id]
        facts = {**self._escaped_facts, **self.language_facts(lang)}
        return Resource(item_id, str(item["title"]).format_map(_SafeDict(facts)),
                        str(item["body"]).format_map(_SafeDict(facts)))

    @property
    def reply_ids(self) -> list[str]:
        return list(self.catalogs["en"].get("replies", {}))

    def reply(self, language: str | None, reply_id: str) -> Resource:
        """One of the center's quick replies (`[replies]`): a title for the specialist's
        button, the text the client reads."""
        return self._topic("replies", language, reply_id)

    def region_name(self, language: str | None, code: str | None) -> str:
        region = self.settings.region(code)
        if region is None:
            return "—"
        return region.name(self.lang(language))
