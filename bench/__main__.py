"""``python -m bench [NAME ...] [--quick]``: run benchmarks, print one JSON line per result.

Without names every benchmark runs. ``--quick`` shrinks the workloads to finish in under a minute;
a full run (no ``--quick``, every benchmark) also rewrites ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import dispatch, fanout
from bench.common import Result

BENCHMARKS: dict[str, Callable[[bool], list[Result]]] = {"fanout": fanout.run, "dispatch": dispatch.run}
REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


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
    results = [result for name in names for result in BENCHMARKS[name](args.quick)]
    if not args.quick and set(names) == set(BENCHMARKS):
        write_report(results)
    return 0


def write_report(results: list[Result]) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Full run of `python -m bench` on {datetime.now(UTC):%Y-%m-%d}: Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, {platform.machine()} {platform.system()}.",
        "Baseline: the comparison measured in the same run (see each benchmark's docstring in `bench/`).",
        "",
        "| benchmark | value | unit | baseline | ratio | parameters |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        lines.append(f"| {r.name} | {r.value:,.3f} | {r.unit} | {r.baseline:,.3f} | {r.ratio} | {params} |")
    lines += [
        "",
        "Targets: fan-out rate >= 0.4 x raw executemany; peak memory < 200 MB for a million residents;",
        "approval to first message < 1 s.",
        "",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
