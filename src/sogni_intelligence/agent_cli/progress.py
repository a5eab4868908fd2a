"""The live progress display on a terminal: one row per piece of work (a workflow's steps, a
run's model rounds and tool calls), redrawn in place, with notes printed above it.

Only used when stderr is a terminal; logs and agents reading stderr get plain lines instead.
"""

from __future__ import annotations

from typing import Literal, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.text import Text

StepState = Literal["started", "completed", "failed"]
#: Rows whose work has no fraction of its own are shown as spinners over this many units.
_TOTAL = 100.0
_MARKS: dict[StepState, str] = {"started": "", "completed": "[green]✓[/] ", "failed": "[red]✗[/] "}


class LiveBoard:
    """A `rich` progress display on `err`, started on first use and stopped by `stop`."""

    def __init__(self, err: TextIO) -> None:
        self.console = Console(file=err, force_terminal=True, highlight=False)
        self._progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
        )
        self._rows: dict[str, TaskID] = {}
        self._running = False

    def _start(self) -> None:
        if not self._running:
            self._progress.start()
            self._running = True

    def log(self, text: str) -> None:
        """A line above the rows (it scrolls; the rows stay at the bottom)."""
        self._start()
        self._progress.console.print(Text(text))

    def row(
        self,
        key: str,
        label: str,
        state: StepState = "started",
        fraction: float | None = None,
        eta: str = "",
    ) -> None:
        """Create or update the row of `key`; a finished row shows a full bar and its mark."""
        self._start()
        description = _MARKS[state] + Text(label).markup
        done = state != "started"
        completed = _TOTAL if done else None if fraction is None else fraction * _TOTAL
        task = self._rows.get(key)
        if task is None:
            total = _TOTAL if done or fraction is not None else None
            self._rows[key] = self._progress.add_task(
                description, total=total, completed=completed or 0, eta=eta
            )
            return
        if completed is not None:
            self._progress.update(task, total=_TOTAL, completed=completed)
        self._progress.update(task, description=description, eta="" if done else eta)

    def stop(self) -> None:
        if self._running:
            self._progress.stop()
            self._running = False
