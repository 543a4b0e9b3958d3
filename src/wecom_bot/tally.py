"""Running totals of a robot's storm: how many distinct alerts it has told the group about.

A storm leaves a robot in paced parts, each a summary of what arrived since the previous one
(1, then 32, 64, 517, 386 alerts). Each part says how many distinct alerts the storm has
brought so far (``累计 1000``), so that nobody has to add them up, and an alert Alertmanager
sends again (every notification of a group repeats the alerts already sent) is counted once.

When a storm begins and ends
    A robot's storm opens with the first backlog the dispatcher folds for it (a summary or a
    digest) and ends at the first moment its rate window holds no send: the robot was idle for
    a whole window. A lull shorter than a window does not end it. The alerts of the messages
    that left the robot as they were shortly before the fold (the first sends of a window leave
    at once: at most ``seed`` of them, sent since its window was last empty) belong to the
    storm too, and so does every alert it delivers until the storm ends.

Firing and resolved alerts are counted apart
    An alert's identity here is its status and labels (:attr:`~wecom_bot.storm.AlertBrief.key`),
    so an alert that fired and then resolved is one firing and one resolved alert. A summary
    of the resolve phase says how many have resolved so far, not how many fired and resolved
    together (which would count each alert twice).

Bounded
    At most ``cap`` distinct alerts are remembered per robot (their hashes, not their labels).
    A storm past that stops stating a running total rather than state a wrong one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from .storm import AlertBrief

__all__ = ["MAX_REMEMBERED", "StormTally"]

MAX_REMEMBERED = 100_000
"""The most distinct alerts one robot's storm remembers (about 8 MB at that size)."""


class StormTally:
    """The distinct alerts one robot has delivered since its storm began (see the module docs).

    Args:
        seed: how many messages delivered before the storm opened count towards it (the sends
            that used up the robot's burst).
        cap: the most distinct alerts remembered.
    """

    def __init__(self, *, seed: int, cap: int = MAX_REMEMBERED) -> None:
        self.seed = max(seed, 0)
        self.cap = cap
        self._open = False
        self._overflow = False
        self._seen: set[int] = set()
        self._counts: dict[str, int] = {}
        self._recent: deque[list[tuple[int, str]]] = deque()
        self._recent_size = 0

    @property
    def open(self) -> bool:
        """Whether a storm is under way."""
        return self._open

    @property
    def busy(self) -> bool:
        """Whether anything is remembered (a storm, or messages that may begin one): the
        dispatcher then looks whether the robot's window is empty."""
        return self._open or bool(self._recent)

    def quiet(self) -> None:
        """The robot's rate window holds no send: its storm (if any) is over."""
        self._open = False
        self._overflow = False
        self._seen.clear()
        self._counts.clear()
        self._recent.clear()
        self._recent_size = 0

    def delivered(self, briefs: Iterable[AlertBrief]) -> None:
        """A message carrying ``briefs`` was delivered as it was (not folded)."""
        marks = [(hash(b.key), b.status) for b in briefs]
        if self._open:
            self._add(marks)
            return
        if self.seed == 0 or not marks:
            return
        self._recent.append(marks)
        self._recent_size += len(marks)
        while len(self._recent) > self.seed or self._recent_size > self.cap:
            self._recent_size -= len(self._recent.popleft())

    def written(self, briefs: Iterable[AlertBrief]) -> dict[str, int] | None:
        """``briefs`` are being folded into a summary or digest (opening the storm if none is
        under way): the running total of each status of ``briefs`` whose total exceeds their
        own count of it; ``None`` when none does (a storm's first summary) or past
        :attr:`cap`."""
        if not self._open:
            self._open = True
            for marks in self._recent:
                self._add(marks)
            self._recent.clear()
            self._recent_size = 0
        own: dict[str, set[int]] = {}
        for brief in briefs:
            own.setdefault(brief.status, set()).add(hash(brief.key))
        self._add((mark, status) for status, marks in own.items() for mark in marks)
        if self._overflow:
            return None
        running = {
            status: self._counts.get(status, 0)
            for status, marks in own.items()
            if self._counts.get(status, 0) > len(marks)
        }
        return running or None

    def counts(self) -> Mapping[str, int]:
        """The distinct alerts per status so far (for tests and logs)."""
        return dict(self._counts)

    def _add(self, marks: Iterable[tuple[int, str]]) -> None:
        for mark, status in marks:
            if mark in self._seen:
                continue
            if len(self._seen) >= self.cap:
                self._overflow = True
                return
            self._seen.add(mark)
            self._counts[status] = self._counts.get(status, 0) + 1
