"""Logging that never blocks the event loop: records go through a bounded queue to a writer.

A terminal paused with Ctrl-S, or a parent that stopped reading a pipe, makes ``write(2)``
block. Logging from the engine's loop would then freeze the loop, and with it e-stops,
heartbeats and signal handling. With :class:`LogPump` the loop only puts a record on a
bounded queue (dropping and counting when full); one daemon thread writes, and may block
alone. Its handler has no lock and writes to its own unbuffered file on a duplicate of
stderr, so neither ``logging.shutdown`` nor the interpreter's final flush of ``sys.stderr``
waits for a writer stuck in ``write``.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import queue
import threading
import time

QUEUE_LIMIT = 10_000


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _NoLock:
    """A lock that never waits.

    Only the writer thread calls the handler, and ``logging.shutdown`` must not wait for a
    writer stuck in ``write``. Python 3.13's ``Handler.handle`` uses ``with self.lock:``, so
    setting the lock to ``None`` no longer works.
    """

    def acquire(self, *args: object) -> bool:
        return True

    def release(self) -> None:
        pass

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: object) -> None:
        pass


class LogPump:
    """The writer thread and its queue (see the module docstring)."""

    def __init__(self, handler: logging.Handler, limit: int = QUEUE_LIMIT) -> None:
        handler.lock = _NoLock()  # type: ignore[assignment]
        self.handler = handler
        self.records: queue.Queue[logging.LogRecord] = queue.Queue(limit)
        self.queue_handler = _DroppingQueueHandler(self.records)
        self._thread = threading.Thread(target=self._run, name="stagectl-log-writer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        reported = 0
        while True:
            record = self.records.get()
            try:
                self.handler.handle(record)
                dropped = self.queue_handler.dropped
                if dropped > reported and self.records.empty():
                    self.handler.handle(logging.makeLogRecord(
                        {"name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                         "msg": f"{dropped - reported} log records dropped: stderr was not "
                                "keeping up"}))
                    reported = dropped
            except Exception:  # a broken handler must not end the writer
                pass
            finally:
                self.records.task_done()

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for everything queued to be written; False if not."""
        deadline = time.monotonic() + timeout_s
        while self.records.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def raw_stderr() -> io.TextIOWrapper:
    """A text file on a duplicate of fd 2 with no buffer (and so no buffer lock)."""
    raw = io.FileIO(os.dup(2), "w", closefd=True)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace",
                            write_through=True, line_buffering=False)
