"""Fetch the next few execution histories while the current one is parsed and written.

Without it a sync pays AWS latency and database time one after the other for every execution;
with it they overlap. Memory stays bounded: at most `depth` histories in flight, each holding at
most `pages_ahead` pages, so a 25,000-event history is still streamed, never held whole.
Background threads only talk to AWS (through the same AwsApi, so rate limiting and call
counting still apply); everything touching the database stays on the caller's thread.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connections.aws import AwsApi, HistoryPage

# How long a producer waits to hand over a page before checking whether it was abandoned.
_PUT_POLL_SECONDS = 0.2
_END = object()


class HistoryStream:
    """The pages of one history, produced on a background thread, consumed in order."""

    def __init__(self, pages_ahead: int) -> None:
        self._pages: queue.Queue[Any] = queue.Queue(maxsize=pages_ahead)
        self._abandoned = threading.Event()

    def produce(self, api: AwsApi, execution_arn: str) -> None:
        try:
            for page in api.history_pages(execution_arn):
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which decides what it means
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._abandoned.is_set():
            try:
                self._pages.put(item, timeout=_PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[HistoryPage]:
        try:
            while True:
                item = self._pages.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop the producer (the consumer failed or gave up on this history)."""
        self._abandoned.set()


class HistoryPrefetcher:
    """Starts history streams on a small thread pool; use as a context manager."""

    def __init__(self, api: AwsApi, depth: int = 4, pages_ahead: int = 2) -> None:
        self.api = api
        self.depth = depth
        self.pages_ahead = pages_ahead
        self._pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="history")
        self._streams: list[HistoryStream] = []
        # The client is created here, once: botocore clients are thread-safe, creating one is not.
        api.client("stepfunctions")

    def open(self, execution_arn: str) -> HistoryStream:
        stream = HistoryStream(self.pages_ahead)
        self._streams = [s for s in self._streams if not s._abandoned.is_set()] + [stream]
        # In the caller's context: its log lines carry the run and account (executions/logs.py).
        self._pool.submit(contextvars.copy_context().run, stream.produce, self.api, execution_arn)
        return stream

    def __enter__(self) -> HistoryPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in self._streams:
            stream.abandon()
        self._pool.shutdown(wait=True, cancel_futures=True)
