"""``notifier report``: the reach report and the department assessment, written as JSON, CSV or XLSX."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from notifier.config import Settings
from notifier.domain.errors import FieldError, InvalidInput
from notifier.report_formats import assessment_tables, reach_tables, to_csv, to_xlsx
from notifier.reports import assessment_report, parse_day_or_moment, period_end, period_start, reach_report
from notifier.store import Store


def _bound(text: str | None, option: str) -> object:
    if text is None:
        return None
    try:
        return parse_day_or_moment(text)
    except ValueError:
        raise InvalidInput(
            f"{option}: expected YYYY-MM-DD or an RFC 3339 time with a zone", [FieldError(option, text[:40])]
        ) from None


async def write_report(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    timezone = settings.server.timezone
    now = datetime.now(UTC)
    start = period_start(_bound(args.from_, "--from"), timezone)  # type: ignore[arg-type]
    end = period_end(_bound(args.to, "--to"), timezone, now)  # type: ignore[arg-type]
    if args.department is not None:
        await store.get_department(args.department)
    if args.format == "xlsx" and args.output is None:
        raise InvalidInput("--format xlsx writes a binary file", [FieldError("--output", "required with xlsx")])
    reach = await reach_report(store, start, end, args.department)
    assessment = await assessment_report(store, settings.approval, start, end, args.department, now)
    if args.format == "json":
        both = {"reach": reach.model_dump(mode="json", by_alias=True)}
        both["departments"] = assessment.model_dump(mode="json", by_alias=True)
        _write(args, json.dumps(both, ensure_ascii=False, indent=2) + "\n")
        return 0
    tables = {**reach_tables(reach), "assessment": assessment_tables(assessment)["departments"]}
    if args.format == "csv":
        _write(args, to_csv(tables))
    else:
        args.output.write_bytes(await asyncio.to_thread(to_xlsx, tables))
    return 0


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
