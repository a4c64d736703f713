"""A collection's sources listed on a thread of their own, ahead of the run that takes them.

The walk is a generator (``facekit.media.collection.walk``), so the run could list each source as
it needs it; listing ahead on a thread keeps that laziness (the first source runs while a large
tree is still being listed) and also lets the progress display show how many sources there are,
and how many are still being found, long before the run gets to the last of them.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Iterable, Iterator, TypeVar

Item = TypeVar("Item")


class ListedAhead(Generic[Item]):
    """Iterates ``items`` on a daemon thread; iterating this object takes them in order.

    The listing holds only what the run has not taken yet (a source is a path and a few names),
    so memory follows how far the listing is ahead, which is cheap next to the run's frames."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.listed = 0  # items found so far
        self.finished = False  # the listing has found every item
        self._waiting: deque[Item] = deque()
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._list, args=(items,), name="list sources", daemon=True)
        self._thread.start()

    def _list(self, items: Iterable[Item]) -> None:
        try:
            for item in items:
                with self._changed:
                    if self._stopped:
                        return
                    self._waiting.append(item)
                    self.listed += 1
                    self._changed.notify_all()
        except BaseException as exc:  # handed to the taker, which raises it in the run's thread
            self._error = exc
        finally:
            with self._changed:
                self.finished = True
                self._changed.notify_all()

    def __iter__(self) -> Iterator[Item]:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._waiting or self.finished)
                if self._waiting:
                    item = self._waiting.popleft()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield item

    def stop(self) -> None:
        """The listing ends at its next item (the run was stopped)."""
        with self._changed:
            self._stopped = True
            self._waiting.clear()
