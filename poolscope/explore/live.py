"""Live mode: call a function every few seconds, on the kernel's event loop
when there is one (Jupyter, Voilà), else on a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["Follower"]


def polling_interval(value: object) -> float:
    """Seconds between two polls: a number above 0 (0 would poll without a pause)."""
    from ..arguments import seconds_argument, shown_value
    from ..errors import InvalidInputError

    seconds = seconds_argument(value, "interval")
    if seconds <= 0:
        raise InvalidInputError(f"interval must be more than 0 seconds, not {shown_value(value)}")
    return seconds


class Follower:
    """Calls ``poll`` every ``interval`` seconds between :meth:`start` and
    :meth:`stop`; an exception from ``poll`` goes to ``on_error`` and the
    following goes on."""

    def __init__(self, poll: Callable[[], object], on_error: Callable[[Exception], None], interval: float) -> None:
        self.poll = poll
        self.on_error = on_error
        self.interval = polling_interval(interval)
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return (self.thread is not None and self.thread.is_alive()) or (self.task is not None and not self.task.done())

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self.task = loop.create_task(self._follow_async())
        else:
            self.thread = threading.Thread(target=self._follow_thread, name="poolscope-explorer-live", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.thread = None

    def _poll_safely(self) -> None:
        try:
            self.poll()
        except Exception as error:  # keep following; say what went wrong
            self.on_error(error)

    def _follow_thread(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll_safely()

    async def _follow_async(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.interval)
            if self._stop.is_set():
                break
            self._poll_safely()
