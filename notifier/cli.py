"""The ``notifier`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from notifier.config import Settings, load_settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.errors import ConfigError, FieldError, InvalidInput, NotifierError
from notifier.logs import configure_logging
from notifier.store import Store, open_database

log = logging.getLogger("notifier")

API_KEY_ENV = "NOTIFIER_API_KEY"


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config (default: $NOTIFIER_CONFIG, else ./config.toml, else defaults)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notifier", description="Multi-channel public-welfare notification service")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="API, pages, scheduler and delivery workers in one process")
    _add_config(serve)
    serve.add_argument("--demo", action="store_true", help="load the demo county (idempotent) before serving")
    serve.add_argument("--host", help="override [server] host")
    serve.add_argument("--port", type=int, help="override [server] port")

    worker = commands.add_parser("worker", help="delivery workers only, beside a serve process on the same database")
    _add_config(worker)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema; safe to run twice")
    _add_config(migrate)
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="sqlite:///old.db",
        help="copy this SQLite installation into the (empty) PostgreSQL database of [database] url",
    )

    subscribers = commands.add_parser("subscribers", help="residents")
    sub_commands = subscribers.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    imp = sub_commands.add_parser("import", help="bulk import residents from CSV or XLSX")
    _add_config(imp)
    imp.add_argument("file", type=Path, help="a .csv or .xlsx roster with a header row")
    imp.add_argument("--report", type=Path, help="where to write the per-row error report (default: FILE.errors.csv)")

    rosters = commands.add_parser("rosters", help="relief rosters")
    roster_commands = rosters.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    roster_import = roster_commands.add_parser(
        "import", help="upload a roster from CSV or XLSX, with the per-row report"
    )
    _add_config(roster_import)
    roster_import.add_argument("file", type=Path, help="a .csv or .xlsx roster with a header row")
    roster_import.add_argument("--department", required=True, metavar="CODE", help="the department that owns it")
    roster_import.add_argument(
        "--key",
        required=True,
        choices=["phone", "external_id", "resident_id"],
        help="the column that identifies the resident",
    )
    roster_import.add_argument("--name", help="the roster's name (default: the file's name)")
    roster_import.add_argument(
        "--direct", action="store_true", help="send to the phone of a row that matches no resident (statutory notice)"
    )

    retention = roster_commands.add_parser(
        "retention", help="days a department's roster rows are kept after the last notice using them ends"
    )
    _add_config(retention)
    retention.add_argument("--department", required=True, metavar="CODE")
    retention.add_argument("--days", required=True, type=int, choices=range(1, 3651), metavar="DAYS")

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    verify = audit_commands.add_parser(
        "verify", help="walk the hash chain; print the count (exit 0) or the first broken entry (exit 1)"
    )
    _add_config(verify)

    report = commands.add_parser("report", help="the reach report and the department assessment of a period")
    _add_config(report)
    report.set_defaults(subcommand="")
    report.add_argument("--from", dest="from_", help="first day (YYYY-MM-DD, server time zone) or RFC 3339 time")
    report.add_argument("--to", help="last day, inclusive (YYYY-MM-DD), or RFC 3339 time (exclusive); default now")
    report.add_argument("--department", help="one department's figures (default: every department)")
    report.add_argument("--format", choices=("json", "csv", "xlsx"), default="json")
    report.add_argument("--output", type=Path, help="write to this file instead of standard output (xlsx needs it)")

    apikey = commands.add_parser("apikey", help="API keys")
    key_commands = apikey.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    create = key_commands.add_parser("create", help="create a key; it is printed once, alone on the last line")
    _add_config(create)
    create.add_argument("--department", required=True, help="department code, e.g. environment")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", help="who or what uses the key")
    listing = key_commands.add_parser(
        "list", help="list keys: prefix, department, role, name, created, last used, revoked"
    )
    _add_config(listing)
    listing.add_argument("--department", help="only this department's keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key; it is refused from its next request on")
    _add_config(revoke)
    revoke.add_argument("prefix", help="the key's prefix, as `apikey list` shows it (ntf_<prefix>_...)")

    staff = commands.add_parser("staff", help="console accounts of staff")
    staff_commands = staff.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    staff_create = staff_commands.add_parser(
        "create", help="create a console account; its one-time password is printed alone on the last line"
    )
    _add_config(staff_create)
    staff_create.add_argument("--department", required=True, help="department code, e.g. environment")
    staff_create.add_argument("--role", required=True, choices=[r.value for r in Role])
    staff_create.add_argument("--name", required=True, help="the person's name, as the console shows it")
    staff_create.add_argument("--login", help="login name (default: <department>-<account id>)")
    staff_list = staff_commands.add_parser(
        "list", help="list accounts: login, name, department, role, created, password changed, state"
    )
    _add_config(staff_list)
    staff_list.add_argument("--department", help="only this department's accounts")
    staff_disable = staff_commands.add_parser(
        "disable", help="disable an account for good: it cannot sign in and its open sessions end at once"
    )
    _add_config(staff_disable)
    staff_disable.add_argument("login", help="the account's login name, as `staff list` shows it")
    staff_reset = staff_commands.add_parser(
        "reset-password",
        help="a forgotten password: a new one-time password, printed alone on the last line; open sessions end",
    )
    _add_config(staff_reset)
    staff_reset.add_argument("login", help="the account's login name, as `staff list` shows it")

    notices = commands.add_parser("notices", help="notices")
    notice_commands = notices.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    send = notice_commands.add_parser("send", help="draft a notice and submit it for approval (same rules as the API)")
    _add_config(send)
    send.add_argument("--api-key", help=f"an issuer key of the department (default: ${API_KEY_ENV})")
    send.add_argument("--json", type=Path, help="a JSON file with the notice as POST /notices takes it")
    send.add_argument("--topic")
    send.add_argument("--title")
    send.add_argument("--body")
    send.add_argument("--severity", default="info")
    send.add_argument("--area", action="append", default=[], help="area code; repeat for several")
    send.add_argument("--group", action="append", default=[], help="group code; repeat for several")
    send.add_argument("--target-topic", action="append", default=[], help="subscribed topic; repeat for several")
    send.add_argument("--channel", action="append", default=[], help="channel kind; repeat (default: all personal)")
    send.add_argument("--send-at", help="RFC 3339 time to start sending")
    send.add_argument("--draft", action="store_true", help="keep it a draft instead of submitting it")
    approve = notice_commands.add_parser("approve", help="approve a pending notice (not by its author)")
    _add_config(approve)
    approve.add_argument("id", type=int)
    approve.add_argument("--api-key", help=f"an approver key of the department (default: ${API_KEY_ENV})")
    approve.add_argument("--comment", help="kept with the approval in the notice's decisions")
    reject = notice_commands.add_parser("reject", help="reject a pending notice, saying why")
    _add_config(reject)
    reject.add_argument("id", type=int)
    reject.add_argument("--api-key", help=f"an approver key of the department (default: ${API_KEY_ENV})")
    reject.add_argument("--comment", required=True, help="why; kept with the rejection in the notice's decisions")
    show = notice_commands.add_parser("show", help="print a notice with its delivery counts")
    _add_config(show)
    show.add_argument("id", type=int)
    show.add_argument("--api-key", help=f"a key of the notice's department (default: ${API_KEY_ENV})")
    return parser


async def _with_store(settings: Settings, action: Callable[[Store], Awaitable[int]]) -> int:
    db = await open_database(settings.database.url, pool_size=settings.database.pool_size)
    try:
        await db.migrate()
        return await action(Store(db))
    finally:
        await db.close()


async def _migrate(settings: Settings, source: str | None = None) -> int:
    if source is not None and not settings.database.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("migrate --from: [database] url (NOTIFIER_DATABASE__URL) must name the PostgreSQL target")
    db = await open_database(settings.database.url, pool_size=settings.database.pool_size)
    try:
        if source is not None:
            from notifier.store.postgres import PostgresDatabase
            from notifier.store.transfer import copy_from_sqlite

            assert isinstance(db, PostgresDatabase)
            copied = await copy_from_sqlite(source, db)
            print("copied: " + ", ".join(f"{table} {rows}" for table, rows in copied.items()))
            return 0
        applied = await db.migrate()
    finally:
        await db.close()
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


async def _apikey_create(store: Store, args: argparse.Namespace) -> int:
    info, plain = await store.create_api_key(
        department=args.department,
        role=Role(args.role),
        name=args.name or f"{args.department}-{args.role}",
        actor="cli",
    )
    print(f"created API key {info.id} for {info.department} ({info.role.value}); it is shown only this once:")
    print(plain)
    return 0


async def _staff_create(store: Store, args: argparse.Namespace) -> int:
    from notifier.api.problems import invalid_from_validation
    from notifier.console.passwords import hash_password, one_time_password
    from notifier.domain.staff import StaffIn

    try:
        new = StaffIn(department=args.department, role=Role(args.role), name=args.name, login=args.login)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None
    password = one_time_password()
    member = await store.create_staff_account(
        department=new.department,
        role=new.role,
        name=new.name,
        login=new.login,
        password_hash=await hash_password(password),
        actor="cli",
    )
    print(f"created console account {member.id} for {member.department} ({member.role.value}), login name:")
    print(member.login)
    print("one-time password (shown only this once; it must be changed at first login):")
    print(password)
    return 0


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def _staff_list(store: Store, args: argparse.Namespace) -> int:
    if args.department is not None:
        await store.get_department(args.department)  # an unknown department is an error, not an empty list
    rows = [["login", "name", "department", "role", "created", "password changed", "state"]]
    for account in await store.list_staff_accounts(args.department):
        member = account.member
        if account.disabled:
            state = "disabled"
        elif member.must_change_password:
            state = "one-time password"
        else:
            state = "active"
        changed = account.password_changed_at[:19] if account.password_changed_at else "-"
        rows.append([member.login, member.name, member.department, member.role.value, account.created_at[:19],
                     changed, state])  # fmt: skip
    _print_table(rows)
    return 0


async def _staff_disable(store: Store, args: argparse.Namespace) -> int:
    account = await store.disable_staff_account(args.login, actor="cli")
    print(f"console account {account.member.login} ({account.member.department}) disabled; its sessions ended")
    return 0


async def _staff_reset_password(store: Store, args: argparse.Namespace) -> int:
    from notifier.console.passwords import hash_password, one_time_password

    password = one_time_password()
    account = await store.reset_staff_password(args.login, await hash_password(password), actor="cli")
    print(f"console account {account.member.login} ({account.member.department}): its sessions ended;")
    print("one-time password (shown only this once; it must be changed at the next login):")
    print(password)
    return 0


async def _apikey_list(store: Store, args: argparse.Namespace) -> int:
    keys, cursor = await store.list_api_keys(department=args.department, cursor=None, limit=1000)
    while cursor is not None:
        more, cursor = await store.list_api_keys(department=args.department, cursor=cursor, limit=1000)
        keys += more
    rows = [["prefix", "department", "role", "name", "created", "last used", "revoked"]]
    for key in keys:
        times = [key.created_at, key.last_used_at, key.revoked_at]
        stamps = [t.astimezone().isoformat(timespec="seconds") if t else "-" for t in times]
        rows.append([key.prefix, key.department, key.role.value, key.name, *stamps])
    _print_table(rows)
    return 0


async def _apikey_revoke(store: Store, args: argparse.Namespace) -> int:
    from notifier.api.apikeys import PREFIX_PATTERN

    if not re.fullmatch(PREFIX_PATTERN, args.prefix, re.ASCII):
        raise InvalidInput(f"{args.prefix!r} is not a key prefix", [FieldError("prefix", "12 hexadecimal digits")])
    key = await store.revoke_api_key(args.prefix, actor="cli")
    assert key.revoked_at is not None
    print(f"API key {key.prefix} ({key.department}, {key.role.value}, {key.name}) revoked at {key.revoked_at}")
    return 0


async def _audit_verify(store: Store, args: argparse.Namespace) -> int:
    result = await store.verify_audit_chain()
    if result.broken is not None:
        print(f"audit chain broken after {result.count} intact entries: {result.broken}")
        return 1
    print(f"audit chain intact: {result.count} entries, head {result.head}")
    return 0


async def _report(store: Store, args: argparse.Namespace) -> int:
    from notifier.report_cli import write_report

    return await write_report(store, args.settings, args)


async def _import(store: Store, args: argparse.Namespace) -> int:
    from subscribers.importer import import_file, rich_progress

    report = args.report or args.file.with_name(args.file.name + ".errors.csv")
    with rich_progress() as progress:
        result = await import_file(store, args.file, actor="cli", report_path=report, progress=progress)
    print(f"rows: {result.total}, imported: {result.imported}, failed: {result.failed}")
    if result.failed:
        print(f"error report: {result.report_path}")
    return 0 if result.failed == 0 else 3


async def _rosters_import(store: Store, args: argparse.Namespace) -> int:
    from subscribers.roster_import import import_roster, report_lines

    report = await import_roster(
        store, args.file, department=args.department, key=args.key, name=args.name, direct=args.direct, actor="cli"
    )
    print("\n".join(report_lines(report)))
    return 3 if report["unmatched"] else 0


async def _rosters_retention(store: Store, args: argparse.Namespace) -> int:
    await store.set_roster_retention(args.department, args.days, "cli")
    print(f"{args.department}: roster rows kept {args.days} days after the last notice using them ends")
    return 0


def _notice_payload(args: argparse.Namespace) -> dict[str, Any]:
    if args.json:
        return dict(json.loads(args.json.read_text(encoding="utf-8")))
    payload: dict[str, Any] = {
        "topic": args.topic,
        "title": args.title,
        "body": args.body,
        "severity": args.severity,
        "target": {"areas": args.area, "groups": args.group, "topics": args.target_topic},
    }
    if args.channel:
        payload["channels"] = args.channel
    if args.send_at:
        payload["send_at"] = datetime.fromisoformat(args.send_at).isoformat()
    return payload


async def _key(store: Store, given: str | None, *roles: Role) -> Any:
    from notifier.domain.errors import Forbidden, Unauthenticated

    plain = given or os.environ.get(API_KEY_ENV, "")
    if not plain:
        raise Unauthenticated(f"no API key: pass --api-key or set {API_KEY_ENV}")
    key = await store.authenticate(plain)
    if key is None:
        raise Unauthenticated("the API key is unknown or revoked")
    if roles and key.role not in roles and key.role is not Role.ADMIN:
        raise Forbidden(f"this needs the role {', '.join(r.value for r in roles)}; the key has {key.role.value}")
    return key


async def _notices_send(store: Store, args: argparse.Namespace) -> int:
    from notifier.api.problems import invalid_from_validation
    from notifier.domain.models import NoticeIn
    from notifier.engine import Renderer, check_renders
    from notifier.policy import check_new_notice

    key = await _key(store, args.api_key, Role.ISSUER)
    try:
        notice = NoticeIn.model_validate(_notice_payload(args))
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None
    await check_new_notice(store, key, notice)
    version = await check_renders(store, notice, key.department, Renderer())
    created, _ = await store.create_notice(
        notice,
        department=key.department,
        created_by=key.id,
        actor=f"apikey:{key.id}",
        template_version=version.version,
    )
    if not args.draft:
        from notifier import approval

        created = await approval.submit(store, args.settings.approval, key, created)
    print(f"notice {created.id}: {created.state.value}")
    return 0


def _decision_comment(args: argparse.Namespace) -> str | None:
    from notifier.api.problems import invalid_from_validation
    from notifier.domain.models import DecisionIn

    try:
        return DecisionIn(comment=args.comment).text
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None


async def _notices_approve(store: Store, args: argparse.Namespace) -> int:
    from notifier import approval
    from notifier.engine.wakeups import announce_once
    from notifier.policy import notice_for_key

    comment = _decision_comment(args)
    key = await _key(store, args.api_key, Role.APPROVER)
    notice = await notice_for_key(store, key, args.id)
    notice = await approval.approve(store, args.settings.approval, key, notice, comment)
    if notice.state is NoticeState.APPROVED:  # the workers start on it now, not at their next poll
        await announce_once(args.settings.database.url)
    print(f"notice {notice.id}: {notice.state.value} ({notice.approvals} of {notice.approvals_required} approvals)")
    return 0


async def _notices_reject(store: Store, args: argparse.Namespace) -> int:
    from notifier.policy import notice_for_key

    comment = _decision_comment(args)
    if not comment:
        raise InvalidInput("a rejection needs a comment", [FieldError("comment", "required when rejecting")])
    key = await _key(store, args.api_key, Role.APPROVER)
    notice = await notice_for_key(store, key, args.id)
    notice = await store.decide_notice(
        notice.id, NoticeState.REJECTED, decider=key, actor=f"apikey:{key.id}", comment=comment
    )
    print(f"notice {notice.id}: {notice.state.value}")
    return 0


async def _notices_show(store: Store, args: argparse.Namespace) -> int:
    from notifier.policy import notice_for_key

    key = await _key(store, args.api_key)
    print((await notice_for_key(store, key, args.id)).model_dump_json(indent=2))
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        from notifier.server import serve

        if args.host:
            settings.server.host = args.host
        if args.port is not None:
            settings.server.port = args.port
        return serve(settings, demo=args.demo)
    if args.command == "worker":
        from notifier.server import run_worker

        return run_worker(settings)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings, args.source))
    handlers: dict[tuple[str, str], Callable[[Store, argparse.Namespace], Awaitable[int]]] = {
        ("subscribers", "import"): _import,
        ("rosters", "import"): _rosters_import,
        ("rosters", "retention"): _rosters_retention,
        ("audit", "verify"): _audit_verify,
        ("report", ""): _report,
        ("apikey", "create"): _apikey_create,
        ("apikey", "list"): _apikey_list,
        ("staff", "create"): _staff_create,
        ("staff", "list"): _staff_list,
        ("staff", "disable"): _staff_disable,
        ("staff", "reset-password"): _staff_reset_password,
        ("apikey", "revoke"): _apikey_revoke,
        ("notices", "send"): _notices_send,
        ("notices", "approve"): _notices_approve,
        ("notices", "reject"): _notices_reject,
        ("notices", "show"): _notices_show,
    }
    handler = handlers[(args.command, args.subcommand)]
    args.settings = settings
    return asyncio.run(_with_store(settings, lambda store: handler(store, args)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging.level)
        return _run(args, settings)
    except ConfigError as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"notifier: {exc.detail}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error.loc}: {error.msg}", file=sys.stderr)
        return 2
    except NotifierError as exc:
        print(f"notifier: {exc.title.lower()}: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
