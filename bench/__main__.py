"""``python -m bench [NAME ...] [--quick]``: run benchmarks, print one JSON line per result.

Without names every benchmark runs. ``--quick`` shrinks the workloads to finish in under a minute.
A run without ``--quick`` also rewrites ``docs/benchmarks.md``: the rows of the benchmarks it ran are
replaced, the rows of the others are kept from the file as they were (with the date of their run).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import dispatch, email, fanout, fanout_pg, load, reach, recovery, roster, sms, wechat, workers
from bench.common import Result, skipped


def bulletin(quick: bool) -> list[Result]:
    """bench/bulletin.py, or a skipped record when WeasyPrint (or its fonts and libraries) cannot run here."""
    try:
        from bench import bulletin as printouts

        return printouts.run(quick)
    except (ImportError, OSError) as exc:
        reason = f"WeasyPrint unavailable: {type(exc).__name__}: {exc}"
        return [skipped("bulletin_render", "printouts/s", reason).emit()]


BENCHMARKS: dict[str, Callable[[bool], list[Result]]] = {
    "fanout": fanout.run,
    "fanout_pg": fanout_pg.run,
    "dispatch": dispatch.run,
    "sms": sms.run,
    "email": email.run,
    "wechat": wechat.run,
    "bulletin": bulletin,
    "reach": reach.run,
    "load": load.run,
    "recovery": recovery.run,
    "roster": roster.run,
    "workers": workers.run,
}
REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
TARGETS = [
    "Targets: fan-out rate >= 0.4 x raw executemany; peak memory < 200 MB for a million residents;",
    "on PostgreSQL (`fanout_pg`, issue 12) the fan-out of a million residents >= 0.5 x a bare COPY of the same rows;",
    "approval to first message < 1 s; through the whole engine, SMS >= 0.5 x the raw aiohttp client and",
    ">= 10 x Apprise, e-mail >= 0.5 x the raw aiosmtplib client and >= 30 x Apprise (issue 4); printouts",
    "per second and WeChat messages per second are reported (issue 5).",
    "",
    "The red-alert day (`reach`, issue 8): one extreme alert to a whole county of 100,000 synthetic residents",
    "over the demo county's 392 real villages, through gateways with latency, 5 % temporary failures, 2 % of",
    "messages never arriving and 3 % of receipts never coming (bench/reach.py, bench/county.py, bench/gateways.py",
    "say how, and which contact coverage). Reached means the message arrived (the simulated gateways' record),",
    "counted from the approval; `time_factor` 1 is real time, a larger one compresses the gateways' delays and",
    "the confirm window (the engine's own work is not compressed, so that is pessimistic). The published",
    "national goal is 82 % of the public within 10 minutes; ours is at least 99 % of the residents with any",
    "address within 10 minutes: `reach.reachable_*` have that 99 % as baseline (ratio 1 meets it),",
    "`reach.all_10min` counts every resident, beside the 82 % goal, and `reach.villages_printout_1min` the",
    "villages whose notice-board printout was queued within a minute, out of every village.",
    "Load (`load`): API latency (p50, p99) while a notice to a million residents is being delivered, beside",
    "the same requests with nothing being delivered, and the delivery rate beside the same notice alone.",
    "Recovery (`recovery`, issue 8): after a SIGKILL, the batch in flight is sent again within a few heartbeats",
    "(2 s each), not after the 60 s lease.",
    "Rosters (`roster`, issue 10): a notice whose every recipient gets their own text from a 100,000-row roster",
    "fans out at >= 0.5 x the plain notice's rate in the same run; composing its messages is measured beside",
    "the plain notice's too.",
    "",
    "SMS on SQLite (issue 12: >= 0.7 x the raw aiohttp client). A running worker writes a batch's results in the",
    "transaction that claims its next batch (`dispatch.record_and_claim`: the results, then the alias's direct",
    "messages, else its deliveries), one write transaction a batch instead of three (results; direct messages;",
    "deliveries): over one 5,000-message round, 633 write transactions before, 272 after (the planner's",
    "included), and the claims' time waiting for the write lock fell from 7.3 s to 1.7 s in all. Measured",
    "before and after, back to back, twice, on 2026-11-30 with `python -m bench sms`, on a machine saturated",
    "by other work (load average 7 to 15 on 2 cores; the raw client made 500 to 1,600 messages/s instead of",
    "~12,000): before 0.74 x (485 vs 655 messages/s) and 0.58 x (787 vs 1,351); after 0.87 x (475 vs 549)",
    "and 0.93 x (628 vs 675, the figures in the table). At that load the sink and the raw client are starved",
    "as much as the engine, so these ratios are not evidence for the target; a run on a quiet machine is",
    "still owed. Where the rest goes (py-spy, 10,000 messages, after the fold): of the event",
    "loop's busy time 58 % is the Kannel adapter's HTTP requests (aiohttp's request path, as in the raw",
    "client), 13 % the record-and-claim transaction (mostly handing its statements to the SQLite thread; the",
    "direct-message claim, nearly always empty, is 15 % of it), 8 % the benchmark's own poller, 4 % the",
    "planner, 2 % building messages.",
    "Workers (`workers`, issue 12): delivery throughput with 1, 2 and 4 `notifier worker` processes on one",
    "PostgreSQL database to a local Kannel sink; target: 2 processes >= 1.7 x one.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        choices=[*BENCHMARKS, []],
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, under a minute in all")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    results = {name: BENCHMARKS[name](args.quick) for name in names}
    if not args.quick:
        write_report(results)
    return 0


def benchmark_of(record: str) -> str | None:
    """The benchmark a record name belongs to: ``fanout.rate`` -> fanout, ``sms_engine`` -> sms."""
    for name in sorted(BENCHMARKS, key=len, reverse=True):  # fanout_pg.rate is fanout_pg's, not fanout's
        if record == name or record.startswith((f"{name}.", f"{name}_")):
            return name
    return None


def previous_rows(text: str) -> dict[str, tuple[str, list[str]]]:
    """Per benchmark, the date of its last run and its table rows, from an earlier report."""
    full_run = re.search(r"^Full run of `python -m bench` on (\d{4}-\d{2}-\d{2})", text, re.MULTILINE)
    dates = {name: full_run.group(1) for name in BENCHMARKS} if full_run else {}
    for line in text.splitlines():
        match = re.match(r"^- `(\w+)`: (\d{4}-\d{2}-\d{2})", line)
        if match:
            dates[match.group(1)] = match.group(2)
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 2 and line.startswith("| ") and not line.startswith(("| benchmark", "| ---")):
            name = benchmark_of(cells[1])
            if name is not None:
                rows.setdefault(name, []).append(line)
    return {name: (dates.get(name, "an earlier run"), lines) for name, lines in rows.items()}


def row(r: Result) -> str:
    params = ", ".join(f"{k}={v}" for k, v in r.params.items())
    value = "skipped" if r.value is None else f"{r.value:,.3f}"
    baseline = "" if r.baseline is None else f"{r.baseline:,.3f}"
    ratio = "" if r.ratio is None else r.ratio
    return f"| {r.name} | {value} | {r.unit} | {baseline} | {ratio} | {params} |"


def write_report(results: dict[str, list[Result]]) -> None:
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    kept = previous_rows(REPORT.read_text(encoding="utf-8")) if REPORT.exists() else {}
    sections = {name: (today, [row(r) for r in rs]) for name, rs in results.items()}
    ran = "all benchmarks" if set(results) == set(BENCHMARKS) else ", ".join(f"`{n}`" for n in results)
    lines = [
        "# Benchmarks",
        "",
        f"Last run of `python -m bench` on {today} ({ran}): Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, {platform.machine()} {platform.system()}, {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.1f} when it ended (other work shares the machine: ratios count).",
        "Baseline: the comparison measured in the same run (see each benchmark's docstring in `bench/`).",
        "Figures by benchmark, with the date of the run they come from:",
        "",
    ]
    order = [name for name in BENCHMARKS if name in sections or name in kept]
    lines += [f"- `{name}`: {(sections.get(name) or kept[name])[0]}" for name in order]
    lines += [
        "",
        "| benchmark | value | unit | baseline | ratio | parameters |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for name in order:
        lines += (sections.get(name) or kept[name])[1]
    lines += ["", *TARGETS, ""]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
