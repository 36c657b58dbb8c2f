"""A rich progress bar for embedding, on stderr, showing chunks/s; a no-op when disabled.

Example:
    >>> with EmbedProgress(10, enabled=False) as bar:
    ...     bar.advance(10)
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed
        return Text(f"{speed:,.0f} chunks/s" if speed else "- chunks/s", style="progress.data.speed")


class EmbedProgress:
    """Context manager: ``advance(n)`` after each embedded batch."""

    def __init__(self, total: int, *, enabled: bool = True, description: str = "embedding") -> None:
        self.enabled = enabled and total > 0
        self._progress: Progress | None = None
        self._task: Any = None
        self.total = total
        self.description = description

    def __enter__(self) -> "EmbedProgress":
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
