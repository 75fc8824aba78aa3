"""A rich progress bar for long imports.

with rich_progress() as progress:
    await import_file(store, path, actor="cli", report_path=report, progress=progress)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def rich_progress(
    description: str = "Importing residents", *, console: Console | None = None
) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar while the block runs; yield the ``(done, total)`` callback that moves it.

    A total of 0 shows an indeterminate bar (the row count of some XLSX files is not known up front).
    The bar goes to stderr by default, so stdout stays free for the command's own output.
    """
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )
    with bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
