"""Configuration: one TOML file validated into typed sections, secrets from the environment.

The file is found from `--config`, else `$SEZIM_CONFIG`, else `config.toml`. Every key is
documented in `config.example.toml`. A bad file stops the program with one line naming the
key and the file (`ConfigError`); the CLI turns that into exit status 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LANGUAGES = ("ky", "ru", "en")
Language = Literal["ky", "ru", "en"]
ROLES = ("psychologist", "lawyer", "child_psychologist", "coordinator", "admin")
Role = Literal["psychologist", "lawyer", "child_psychologist", "coordinator", "admin"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

ENV_TOKEN = "SEZIM_BOT_TOKEN"
ENV_SECRET = "SEZIM_SECRET_KEY"
ENV_DATABASE = "SEZIM_DATABASE_URL"
ENV_CONFIG = "SEZIM_CONFIG"
ENV_WEBHOOK_SECRET = "SEZIM_WEBHOOK_SECRET"
ENV_DATABASE_PASSWORD = "SEZIM_DATABASE_PASSWORD"
# Each secret's systemd credential name (LoadCredential=NAME:/path in the unit).
CREDENTIALS = {
    ENV_TOKEN: "bot_token",
    ENV_SECRET: "secret_key",
    ENV_DATABASE: "database_url",
    ENV_DATABASE_PASSWORD: "database_password",
    ENV_WEBHOOK_SECRET: "webhook_secret",
}
# Secrets the config file may not hold: (section, key, the variable to use instead).
IN_FILE_REFUSED = (("telegram", "token", ENV_TOKEN), ("security", "secret_key", ENV_SECRET))

# Values that must never run in production: the example file's and obvious stand-ins.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "please-change-me"}
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the person who runs the bot."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organization(_Section):
    name: str = "Sezim"
    hotline: str = "+996 312 512640"
    hotline_hours: str = "24/7"
    timezone: str = "Asia/Bishkek"
    default_language: Language = "ru"
    # Working hours for statistics ("out of hours" appeals) and the waiting message.
    office_open: time = time(9, 0)
    office_close: time = time(18, 0)
    office_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    # Days the office is closed (public holidays), as dates: 2027-01-01.
    holidays: list[date] = Field(default_factory=list)
    # Said to clients only where true: "our help is free", and the club for women over 55.
    free_of_charge: bool = False
    club_55: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Emergency(_Section):
    police: str = "102"
    ambulance: str = "103"
    fire: str = "101"
    unified: str = "112"
    children: str = "111"


class Region(_Section):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    ky: str
    ru: str
    en: str

    def name(self, language: str) -> str:
        return str(getattr(self, language, self.en))


DEFAULT_REGIONS = (
    Region(code="bishkek", ky="Бишкек шаары", ru="г. Бишкек", en="Bishkek city"),
    Region(code="osh_city", ky="Ош шаары", ru="г. Ош", en="Osh city"),
    Region(code="chui", ky="Чүй облусу", ru="Чуйская область", en="Chüy region"),
    Region(code="osh", ky="Ош облусу", ru="Ошская область", en="Osh region"),
    Region(code="jalal_abad", ky="Жалал-Абад облусу", ru="Джалал-Абадская область",
           en="Jalal-Abad region"),
    Region(code="issyk_kul", ky="Ысык-Көл облусу", ru="Иссык-Кульская область",
           en="Issyk-Kul region"),
    Region(code="naryn", ky="Нарын облусу", ru="Нарынская область", en="Naryn region"),
    Region(code="talas", ky="Талас облусу", ru="Таласская область", en="Talas region"),
    Region(code="batken", ky="Баткен облусу", ru="Баткенская область", en="Batken region"),
    Region(code="abroad", ky="Чет өлкөдө", ru="За рубежом", en="Abroad"),
    Region(code="unspecified", ky="Айткым келбейт", ru="Не хочу говорить",
           en="Rather not say"),
)


class Escalation(_Section):
    # Minutes a case may wait unclaimed before it goes to the next person on duty
    # (fractions allowed: 0.5 is thirty seconds).
    emergency_minutes: float = Field(default=2, gt=0, le=240)
    high_minutes: float = Field(default=5, gt=0, le=240)
    standard_minutes: float = Field(default=15, gt=0, le=1440)


class Retention(_Section):
    days_after_close: int = Field(default=30, ge=0, le=3650)
    # Months a closed case stays linked to her (by an HMAC of her Telegram id) so that her
    # next request's card lists it; 0: never linked. /forget removes the link at once.
    returning_months: int = Field(default=12, ge=0, le=60)
    # Conversation steps left untouched this long are dropped.
    idle_state_hours: int = Field(default=72, ge=1, le=720)


class Limits(_Section):
    messages_per_minute: int = Field(default=30, ge=1, le=600)
    taps_per_minute: int = Field(default=60, ge=1, le=600)
    max_text_length: int = Field(default=2000, ge=100, le=4096)
    # Telegram's sending limits the bot keeps to (0: none, for a local Bot API server).
    telegram_per_second: float = Field(default=30, ge=0, le=1000)
    per_chat_per_second: float = Field(default=1, ge=0, le=100)


class Telegram(_Section):
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    token: SecretStr | None = None
    # Webhook mode: Telegram calls this public HTTPS address (behind a reverse proxy that
    # forwards to webhook_listen:webhook_port). Empty: long polling.
    webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    poll_timeout: int = Field(default=30, ge=0, le=50)
    # How many chats' updates are handled at the same time (each chat's stay in order).
    # 16 keep Telegram's sending limit (30 messages a second) busy over real round trips;
    # more only wait longer inside the bot (bench/load.py, docs/performance.md).
    concurrency: int = Field(default=16, ge=1, le=256)
    # No longer used (the bot speaks to the Bot API through PTB's own HTTP client); still
    # accepted so that a configuration written for an older version starts unchanged.
    transport: Literal["aiohttp", "httpx"] | None = None


class Database(_Section):
    url: str = "sqlite+aiosqlite:///sezim.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"not {url.drivername}://"
            )
        return value


class Security(_Section):
    # Prefer SEZIM_SECRET_KEY in the environment; a key in a file must never be committed.
    secret_key: SecretStr | None = None


class Content(_Section):
    # A directory of the center's own texts (ky.toml, ru.toml, en.toml, each with only the
    # keys it changes), outside the checkout so an upgrade never meets them.
    dir: Path | None = None


PartnerService = Literal["psychological", "legal", "shelter", "medical", "children", "hotline"]


class Partner(_Section):
    """A partner center the bot names to a client of the regions it serves (never an
    address: a name, a phone number and hours)."""

    name: str = Field(min_length=1, max_length=120)
    regions: list[str] = Field(min_length=1)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 ()-]{1,30}$")
    hours: str = Field(default="", max_length=60)
    services: list[PartnerService] = Field(default_factory=list)


class Shift(_Section):
    member: str = Field(min_length=1, max_length=64)
    role: Role
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: time
    end: time


class Settings(_Section):
    organization: Organization = Organization()
    emergency: Emergency = Emergency()
    regions: list[Region] = Field(default_factory=lambda: list(DEFAULT_REGIONS), min_length=1)
    escalation: Escalation = Escalation()
    retention: Retention = Retention()
    limits: Limits = Limits()
    telegram: Telegram = Telegram()
    database: Database = Database()
    security: Security = Security()
    content: Content = Content()
    roster: list[Shift] = Field(default_factory=list)
    partners: list[Partner] = Field(default_factory=list)

    # Filled from the environment after validation; never read from a committed file.
    source: str = "defaults"

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, value: list[Region]) -> list[Region]:
        codes = [r.code for r in value]
        if len(set(codes)) != len(codes):
            raise ValueError("region codes must be unique")
        return value

    @model_validator(mode="after")
    def _partners_serve_known_regions(self) -> Settings:
        codes = {r.code for r in self.regions}
        for partner in self.partners:
            unknown = [c for c in partner.regions if c not in codes]
            if unknown:
                raise ValueError(f"partner {partner.name!r} names unknown region {unknown[0]!r}")
        return self

    def partners_for(self, region: str | None) -> list[Partner]:
        """The partners serving `region`; all of them when her region is not known."""
        if region is None:
            return list(self.partners)
        return [p for p in self.partners if region in p.regions]

    @property
    def token(self) -> str | None:
        return self.telegram.token.get_secret_value() if self.telegram.token else None

    @property
    def secret_key(self) -> str | None:
        key = self.security.secret_key
        return key.get_secret_value() if key else None

    def region(self, code: str | None) -> Region | None:
        return next((r for r in self.regions if r.code == code), None)


def _first_error_line(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    if err["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    message = err["msg"].removeprefix("Value error, ")
    return f"{source}: bad value for '{key}': {message}"


def resolve_path(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[Path, bool]:
    """Where the configuration comes from, and whether the person named it."""
    if explicit:
        return Path(explicit), True
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]), True
    return Path("config.toml"), False


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, validate and merge the configuration with the environment's secrets."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    file, named = resolve_path(path, env)
    data: dict[str, Any] = {}
    source = str(file)
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    elif named:
        raise ConfigError(f"{source}: no such configuration file")
    else:
        source = "defaults (no config.toml)"

    for section, key, var in IN_FILE_REFUSED:
        table = data.get(section)
        if isinstance(table, dict) and table.get(key):
            raise ConfigError(
                f"{source}: '{section}.{key}' is a secret and does not belong in the config "
                f"file: remove it and set {var} (or {var}_FILE, or the systemd credential "
                f"'{CREDENTIALS[var]}')")
    database = data.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str) and \
            _has_password(database["url"]):
        raise ConfigError(
            f"{source}: the database URL holds a password: remove it from the file and set "
            f"{ENV_DATABASE_PASSWORD} (or {ENV_DATABASE_PASSWORD}_FILE, or the systemd "
            f"credential '{CREDENTIALS[ENV_DATABASE_PASSWORD]}')")
    overrides = {
        ENV_TOKEN: ("telegram", "token"),
        ENV_SECRET: ("security", "secret_key"),
        ENV_DATABASE: ("database", "url"),
    }
    for var, (section, key) in overrides.items():
        value = secret_from(env, var)
        if value:
            if not isinstance(data.get(section, {}), dict):
                raise ConfigError(f"{source}: '{section}' must be a table")
            data.setdefault(section, {})[key] = value
    password = secret_from(env, ENV_DATABASE_PASSWORD)
    if password:
        database = data.setdefault("database", {})
        url = str(database.get("url") or Database().url)
        try:
            database["url"] = make_url(url).set(password=password).render_as_string(
                hide_password=False)
        except ArgumentError:
            pass  # the URL's own validation names the problem
    if "source" in data:
        raise ConfigError(f"{source}: unknown key 'source'")
    data["source"] = source
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error_line(exc, source)) from None


def _has_password(url: str) -> bool:
    try:
        return make_url(url).password is not None
    except ArgumentError:
        return False


def secret_from(env: Mapping[str, str], var: str) -> str | None:
    """A secret from the environment variable `var`; else from the file `var`_FILE names
    (an env file or a mounted secret, readable only by the service); else from the systemd
    credential of its name (`LoadCredential=`, under $CREDENTIALS_DIRECTORY). A trailing
    newline is not part of it. None if none is set."""
    value = env.get(var)
    if value:
        return value
    named = env.get(f"{var}_FILE")
    if named:
        return _read_secret(Path(named), f"{var}_FILE")
    directory = env.get("CREDENTIALS_DIRECTORY")
    if directory:
        path = Path(directory) / CREDENTIALS[var]
        if path.exists():
            return _read_secret(path, f"the systemd credential '{CREDENTIALS[var]}'")
    return None


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} is not a text file") from None
    if not value:
        raise ConfigError(f"{what}: {path} is empty")
    return value


def require_secret_key(settings: Settings) -> str:
    """The server secret, refusing placeholders: every pseudonym and ciphertext hangs on it."""
    key = settings.secret_key
    if key is None or key.strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigError(
            f"{ENV_SECRET} is not set: generate one with "
            "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"` "
            "and keep it out of any committed file"
        )
    first = key.split(",")[0].strip()
    if len(first) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{ENV_SECRET} is too short: use at least {MIN_SECRET_LENGTH} random characters"
        )
    return key


_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,80}$")


def looks_like_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))
