"""The `sezim-bot` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import __version__
from bot.core.config import (
    ENV_DATABASE,
    ENV_SECRET,
    ENV_TOKEN,
    ConfigError,
    Settings,
    load,
    looks_like_token,
)
from bot.core.redact import REDACTOR
from bot.core.redact import install as install_redactor

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def setup_logging(verbose: bool = False, *, quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request line, and those carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    # PTB at DEBUG would log request payloads, which carry message text.
    logging.getLogger("telegram").setLevel(logging.WARNING if not verbose else logging.INFO)
    # The secrets named in the environment are hidden from the very first line; those of
    # the configuration are added once it is read.
    REDACTOR.add(os.environ.get(ENV_TOKEN), os.environ.get(ENV_SECRET))
    REDACTOR.add_database_url(os.environ.get(ENV_DATABASE))
    install_redactor()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sezim-bot",
        description="A Telegram bot for crisis centers that help survivors of domestic violence.",
    )
    parser.add_argument("--version", action="version", version=f"sezim-bot {__version__}")
    parser.add_argument("--config", help="TOML configuration (else $SEZIM_CONFIG, else "
                        "config.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # `--config` is accepted after the command too (`sezim-bot db upgrade --config F`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", dest="sub_config", help="TOML configuration")

    sub.add_parser("run", parents=[common], help="run the bot (long polling)")

    demo = sub.add_parser("demo", help="the real bot against the built-in Telegram emulator, "
                          "playing a crisis conversation")
    demo.add_argument("--interactive", action="store_true", help="play the client yourself")
    demo.add_argument("--language", choices=("ky", "ru", "en"), default="ru",
                      help="the client's language in the scripted demo")

    db = sub.add_parser("db", help="database")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", parents=[common], help="apply all migrations")

    staff = sub.add_parser("staff", help="staff members and their roles")
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    add = staff_sub.add_parser("add", parents=[common],
                               help="add a member (or change her name and roles)")
    add.add_argument("--telegram-id", type=int, required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True,
                     help="psychologist, lawyer, child_psychologist, coordinator, admin "
                          "(comma-separated)")
    remove = staff_sub.add_parser("remove", parents=[common],
                                  help="take away all access at once")
    remove.add_argument("--telegram-id", type=int, required=True)
    staff_sub.add_parser("list", parents=[common], help="active members")

    sub.add_parser("check", parents=[common],
                   help="before going live: configuration, texts, key, database, token, "
                        "who is on duty in the next 7 days")

    backup = sub.add_parser("backup", parents=[common],
                            help="a consistent copy of the database while the bot runs")
    backup.add_argument("file", help="where to write it (readable by you only)")

    au = sub.add_parser("audit", parents=[common], help="the audit log: who did what, when")
    au.add_argument("--from", dest="start", type=_date, help="first day (default: 30 days ago)")
    au.add_argument("--to", dest="end", type=_date, help="last day (default: today)")
    au.add_argument("--member", help="only this staff member (her name)")

    sub.add_parser("purge", parents=[common], help="apply the retention policy now")

    sub.add_parser("rotate-key", parents=[common],
                   help="re-encrypt everything under the first of SEZIM_SECRET_KEY's keys")

    ap = sub.add_parser("appeal", help="appeals that came by the hotline or in person")
    ap_sub = ap.add_subparsers(dest="appeal_command", metavar="ACTION", required=True)
    ap_add = ap_sub.add_parser(
        "add", parents=[common],
        help="record appeals from a spreadsheet saved as CSV, with the columns date, "
             "channel (hotline, walk_in), region, kind, for_whom, outcome")
    ap_add.add_argument("file", help="the CSV file ('-': standard input)")

    st = sub.add_parser("stats", parents=[common], help="anonymous figures for reports")
    st.add_argument("--from", dest="start", type=_date, help="first day (default: 1 January)")
    st.add_argument("--to", dest="end", type=_date, help="last day (default: today)")
    st.add_argument("--by", default="region",
                    help="one or two of region, category, month, urgency, language, outcome, "
                         "for_whom, out_of_hours, screen (comma-separated)")
    st.add_argument("--format", choices=("table", "csv", "json", "png", "pdf"), default="table",
                    help="pdf: the annual report as one document (with --report annual)")
    st.add_argument("--out", help="write to this file (required for png and pdf)")
    st.add_argument("--excel", action="store_true",
                    help="with --format csv: a byte-order mark, so Excel reads the letters")
    st.add_argument("--report", choices=("annual",),
                    help="the annual report's figures instead of one breakdown")
    st.add_argument("--during", nargs=2, type=_date, metavar=("FROM", "TO"),
                    help="with --report: also count the appeals of these days (a state of "
                         "emergency, a campaign)")
    st.add_argument("--external", action="store_true",
                    help="suppress cells under 5, for figures that leave the center")
    st.add_argument("--language", choices=("ky", "ru", "en"),
                    help="labels' language (default: the center's)")
    return parser


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file only its owner can read (0600), even one that was there before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever the bot creates (the database and its WAL, exports, charts, backups) is
    # readable by its own user only.
    os.umask(0o077)
    parser = _parser()
    args = parser.parse_args(argv)
    # The demo prints conversations; log lines would only get in their way.
    setup_logging(args.verbose, quiet=args.command == "demo")
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    config_path = getattr(args, "sub_config", None) or args.config
    try:
        if args.command == "demo":
            from bot.dev import demo

            return demo.main(interactive=args.interactive, language=args.language)
        settings = load(config_path)
        REDACTOR.add(settings.token, settings.secret_key)
        REDACTOR.add_database_url(settings.database.url)
        if args.command == "run":
            return _run(settings)
        if args.command == "db":
            from bot.telegram.polling import upgrade_database

            asyncio.run(upgrade_database(settings))
            print("database is at the newest schema")
            return 0
        if args.command == "staff":
            return asyncio.run(_staff(settings, args))
        if args.command == "purge":
            return asyncio.run(_purge(settings))
        if args.command == "audit":
            return asyncio.run(_audit(settings, args))
        if args.command == "check":
            return asyncio.run(_check(settings))
        if args.command == "backup":
            return _backup(settings, Path(args.file))
        if args.command == "stats":
            return asyncio.run(_stats(settings, args))
        if args.command == "appeal":
            return asyncio.run(_appeal_add(settings, args.file))
        if args.command == "rotate-key":
            return asyncio.run(_rotate_key(settings))
    except ConfigError as exc:
        print(f"sezim-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        from bot.core.outage import is_outage, is_refusal, reason

        if is_refusal(exc):
            print(REDACTOR.redact(f"sezim-bot: the database refused the login ({reason(exc)}):"
                                  " check SEZIM_DATABASE_PASSWORD and [database] url"),
                  file=sys.stderr)
            return EXIT_CONFIG
        if not is_outage(exc):
            raise
        # One line, never a traceback (SQLAlchemy's would quote the URL).
        print(REDACTOR.redact(f"sezim-bot: the database cannot be reached ({reason(exc)}); "
                              "is it running, and is [database] url right?"), file=sys.stderr)
        return 1
    parser.print_help()
    return EXIT_CONFIG


async def _rotate_key(settings: Settings) -> int:
    from bot.core import keys
    from bot.core.config import require_secret_key
    from bot.core.crypto import Crypto

    secret = require_secret_key(settings)
    if "," not in secret:
        print("sezim-bot: set SEZIM_SECRET_KEY=NEW,OLD (the new key first) to rotate; "
              "see `sezim-bot rotate-key --help`", file=sys.stderr)
        return EXIT_CONFIG
    from bot.core.clock import Clock

    engine, sessions = await _with_session(settings, rotating=True)
    try:
        async with sessions() as session, session.begin():
            crypto = Crypto(secret)
            counts = await keys.rotate(session, crypto=crypto)
            await keys.rotated(session, crypto=crypto, now=Clock().now())
    finally:
        await engine.dispose()
    print(f"re-encrypted {counts['clients']} client(s), {counts['staff']} staff member(s) and "
          f"{counts['phones']} phone number(s) under the new key; you can now remove the "
          "old key from SEZIM_SECRET_KEY")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from bot.core.clock import Clock
    from bot.core.i18n import Texts
    from bot.domain import charts, stats

    today = stats.today_in(settings.organization.tz, Clock().now())
    start = args.start or date(today.year, 1, 1)
    end = args.end or today
    if end < start:
        print("sezim-bot: --to is before --from", file=sys.stderr)
        return EXIT_CONFIG
    if args.format in ("png", "pdf") and not args.out:
        print(f"sezim-bot: --format {args.format} needs --out FILE", file=sys.stderr)
        return EXIT_CONFIG
    if args.format == "pdf" and not args.report:
        print("sezim-bot: --format pdf is for --report annual", file=sys.stderr)
        return EXIT_CONFIG
    texts = Texts(settings)
    language = args.language or settings.organization.default_language
    engine, sessions = await _with_session(settings)
    try:
        async with sessions() as session:
            if args.report:
                grids = await stats.annual_report(
                    session, start=start, end=end, texts=texts, language=language,
                    external=args.external,
                    during=tuple(args.during) if args.during else None)
                heading = texts.t(language, "report_heading", start=start.isoformat(),
                                  end=end.isoformat())
                rendered: str | bytes
                if args.format == "table":
                    rendered = stats.report_text(grids, heading)
                elif args.format == "csv":
                    rendered = stats.report_csv(grids)
                    if args.excel:
                        rendered = "\ufeff" + rendered
                elif args.format == "pdf":
                    source = texts.t(language, "report_source", center=settings.organization.name)
                    if args.external:
                        source += " " + texts.t(language, "report_source_external")
                    rendered = charts.report_pdf(
                        grids, title=texts.t(language, "report_pdf_title"),
                        center=settings.organization.name,
                        period=f"{start.isoformat()} – {end.isoformat()}", source=source)
                elif args.format == "json":
                    rendered = stats.report_json(grids, start=start, end=end,
                                                 external=args.external)
                else:
                    rendered = charts.bar_chart(grids[0])
            else:
                try:
                    by = stats.parse_by(args.by)
                except stats.StatsError as exc:
                    print(f"sezim-bot: {exc}", file=sys.stderr)
                    return EXIT_CONFIG
                result = await stats.breakdown(session, start=start, end=end, by=by)
                table = stats.grid(result, texts=texts, language=language,
                                   external=args.external)
                if args.format == "table":
                    rendered = table.text()
                elif args.format == "csv":
                    # A file gets the byte-order mark Excel needs; the terminal does not.
                    rendered = table.csv_file() if args.out or args.excel else table.csv()
                elif args.format == "json":
                    rendered = stats.breakdown_json(table, result=result,
                                                    external=args.external)
                else:
                    rendered = charts.bar_chart(table)
    finally:
        await engine.dispose()
    if args.out:
        data = rendered if isinstance(rendered, bytes) else rendered.encode("utf-8")
        write_private(args.out, data)
        print(f"written to {args.out}")
    else:
        assert isinstance(rendered, str)
        sys.stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
    return 0


async def _settle_memory(_app: object) -> None:
    """Once the bot has started: what it loaded so far (modules, settings, texts) lives as
    long as the process, so the garbage collector stops walking it (`gc.freeze`), and
    collects young objects less often: each update leaves hundreds of short-lived objects
    (its parsed JSON, SQLAlchemy's statements and rows), and the default threshold of 700
    spent about 5% of the bot's time collecting them (bench/load.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 50)


def _run(settings: Settings) -> int:
    token = settings.token
    if not token:
        print(
            f"sezim-bot: no bot token. Create a bot with @BotFather in Telegram, then\n"
            f"  export {ENV_TOKEN}=123456789:AA...   (never put it in a committed file)\n"
            f"and run `sezim-bot run` again. To see the bot without Telegram, run "
            f"`sezim-bot demo`.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not looks_like_token(token):
        print(f"sezim-bot: {ENV_TOKEN} does not look like a bot token from @BotFather",
              file=sys.stderr)
        return EXIT_CONFIG
    from bot.core.config import require_secret_key
    from bot.core.i18n import Texts

    require_secret_key(settings)
    Texts(settings)  # a broken text stops the start here, in one line, not a client later
    from bot.telegram.polling import serve

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, token=token, stop=stop, on_ready=_settle_memory)

    # uvloop: the same asyncio, its event loop and sockets in C (bench/load.py); where it
    # is not installed (Windows), asyncio's own loop.
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    from telegram.error import InvalidToken

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_main())
    except InvalidToken:
        # One line, and never the token itself (PTB's message holds it whole).
        print(f"sezim-bot: Telegram rejected the bot token; check {ENV_TOKEN} "
              f"(a new one comes from @BotFather)", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def _with_session(
    settings: Settings, *, rotating: bool = False,
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    from bot.core.db import create_engine, sessionmaker
    from bot.telegram.polling import upgrade_database

    await upgrade_database(settings, rotating=rotating)
    engine = create_engine(settings.database.url)
    return engine, sessionmaker(engine)


async def _staff(settings: Settings, args: argparse.Namespace) -> int:
    from bot.core.clock import Clock
    from bot.core.config import require_secret_key
    from bot.core.crypto import Crypto
    from bot.domain import staff as staff_service

    crypto = Crypto(require_secret_key(settings))
    engine, sessions = await _with_session(settings)
    now = Clock().now()
    try:
        async with sessions() as session, session.begin():
            if args.staff_command == "add":
                roles = staff_service.parse_roles(args.role)
                change = await staff_service.upsert_staff(
                    session, crypto=crypto, telegram_id=args.telegram_id, name=args.name,
                    roles=roles, now=now)
                done = "added" if change.created else "updated"
                print(f"{done} {change.member.name} ({', '.join(sorted(roles))})")
            elif args.staff_command == "remove":
                member = await staff_service.remove_staff(
                    session, crypto=crypto, telegram_id=args.telegram_id, now=now)
                print(f"removed {member.name}; her access ended now")
            else:
                members = await staff_service.list_staff(session)
                if not members:
                    print("no staff yet: sezim-bot staff add --telegram-id N --name NAME "
                          "--role ROLE")
                on_duty = {m.id for m in await staff_service.on_duty(
                    session, settings=settings, now=now)}
                for m in members:
                    duty = "on duty" if m.id in on_duty else "off duty"
                    print(f"{m.name}\t{','.join(sorted(m.role_names))}\t"
                          f"{crypto.decrypt_int(m.tg_id_enc)}\t{duty}")
    except staff_service.StaffError as exc:
        print(f"sezim-bot: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


def _backup(settings: Settings, target: Path) -> int:
    """SQLite's online backup: a consistent copy while the bot writes, page by page."""
    import sqlite3

    from sqlalchemy.engine import make_url

    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        print("sezim-bot: for PostgreSQL use its own tool, as the database's owner:\n"
              f"  pg_dump --format=custom --file {target} {url.database or 'sezim'}\n"
              "and keep the file readable by you only (chmod 600)", file=sys.stderr)
        return EXIT_CONFIG
    source = Path(url.database or "")
    if not source.exists():
        print(f"sezim-bot: no database at {source}", file=sys.stderr)
        return 1
    if target.resolve() == source.resolve():
        print("sezim-bot: the backup cannot be the database itself", file=sys.stderr)
        return 1
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(partial)) as dst:
        src.backup(dst, pages=1024)
    partial.chmod(0o600)
    partial.replace(target)
    print(f"backed up to {target} ({target.stat().st_size // 1024} KiB); it can be read "
          "only with SEZIM_SECRET_KEY, which must be kept apart from it")
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """The audit log as tab-separated lines: time (the center's zone), member, action,
    case, detail. Never client data: the log holds none."""
    from datetime import UTC, datetime, time, timedelta

    from sqlalchemy import select

    from bot.core.clock import Clock, aware
    from models import AuditEntry, Staff

    tz = settings.organization.tz
    today = Clock().now().astimezone(tz).date()
    end = args.end or today
    start = args.start or end - timedelta(days=30)
    engine, sessions = await _with_session(settings)
    try:
        async with sessions() as session:
            query = (select(AuditEntry, Staff.name)
                     .outerjoin(Staff, Staff.id == AuditEntry.staff_id)
                     .where(AuditEntry.at >= datetime.combine(start, time.min, tz)
                            .astimezone(UTC),
                            AuditEntry.at < datetime.combine(end + timedelta(days=1),
                                                             time.min, tz).astimezone(UTC))
                     .order_by(AuditEntry.at, AuditEntry.id))
            rows = list((await session.execute(query)).tuples().all())
    finally:
        await engine.dispose()
    if args.member:
        rows = [(e, n) for e, n in rows if (n or "").casefold() == args.member.casefold()]
        if not rows:
            print(f"sezim-bot: nothing by {args.member!r} from {start} to {end}",
                  file=sys.stderr)
            return 1
    for entry, name in rows:
        who = name or entry.actor
        print(f"{aware(entry.at).astimezone(tz):%Y-%m-%d %H:%M:%S}\t{who}\t{entry.action}\t"
              f"{entry.case_id or ''}\t{entry.detail or ''}")
    return 0


async def _check(settings: Settings) -> int:
    from bot import check

    lines = await check.run(settings)
    for line in lines:
        print(line)
    failed = sum(1 for line in lines if line.status == "FAIL")
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


async def _appeal_add(settings: Settings, file: str) -> int:
    """All the file's appeals, or none: a bad line is named and nothing is written."""
    from bot.domain import appeals

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        print(f"sezim-bot: cannot read {file}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    except UnicodeDecodeError:
        print(f"sezim-bot: {file} is not UTF-8 text (in Excel: Save As, CSV UTF-8)",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        rows = appeals.parse_csv(text, settings)
    except appeals.AppealError as exc:
        print(f"sezim-bot: {file}: {exc}; nothing was recorded", file=sys.stderr)
        return EXIT_CONFIG
    engine, sessions = await _with_session(settings)
    try:
        async with sessions() as session, session.begin():
            count = await appeals.record(session, rows, settings=settings)
    finally:
        await engine.dispose()
    by = {c: sum(r.channel == c for r in rows) for c in appeals.CHANNELS}
    print(f"recorded {count} appeal(s): " + ", ".join(f"{n} {c.replace('_', '-')}"
                                                      for c, n in by.items()))
    return 0


async def _purge(settings: Settings) -> int:
    from bot.core.clock import Clock
    from bot.domain import retention

    engine, sessions = await _with_session(settings)
    try:
        async with sessions() as session, session.begin():
            report = await retention.purge(session, settings=settings, now=Clock().now())
    finally:
        await engine.dispose()
    print(f"purged {report.cases} case(s) and {report.clients} client record(s); "
          f"reset {report.states_reset} idle conversation(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
