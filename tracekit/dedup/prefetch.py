"""`prefetched`: the next items of an iterator produced on a background thread while the current one is used."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """`items`, produced up to `depth` ahead on a background thread.

    Parquet decoding releases the GIL, so reading the next batches overlaps with the work done on
    the current one. An exception in the producer is raised here, at the item where it happened;
    closing this generator early stops the producer.
    """
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(message: tuple[str, object]) -> bool:
        """Queue `message` unless the consumer has stopped (then return False)."""
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer
            offer(("error", exc))

    thread = threading.Thread(target=produce, name="tracekit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
