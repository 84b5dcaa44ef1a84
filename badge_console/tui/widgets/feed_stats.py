"""The Live feed's bookkeeping, no Textual: a bounded inbox, the award rate, the filter.

`AwardInbox` is where the listener thread drops awards; the UI drains it on a timer,
so a flood of thousands of awards per second becomes ~10 merged updates per second
instead of one message per award. The inbox keeps only the newest `capacity` awards
(the view shows no more than that) but counts every one, per badge, so totals and
rates stay exact when rows are dropped.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from ...core.feed import Award

RATE_WINDOW = 60  # seconds of award rate the sparkline shows


@dataclass
class Drained:
    awards: list[Award]  # oldest first, at most `capacity` of them
    received: int  # every event since the last drain, shown or dropped
    per_badge: Counter = field(default_factory=Counter)  # awards and grants
    revoked: Counter = field(default_factory=Counter)  # revocations, per badge
    per_event: Counter = field(default_factory=Counter)  # award, grant, revoke


class AwardInbox:
    """Thread-safe: `put` from the listener's thread, `drain` from the UI thread."""

    def __init__(self, capacity: int):
        self._awards: deque[Award] = deque(maxlen=capacity)
        self._received = 0
        self._per_badge: Counter = Counter()
        self._revoked: Counter = Counter()
        self._per_event: Counter = Counter()
        self._lock = threading.Lock()

    def put(self, award: Award) -> None:
        with self._lock:
            self._awards.append(award)
            self._received += 1
            (self._revoked if award.event == "revoke" else self._per_badge)[award.code] += 1
            self._per_event[award.event] += 1

    def drain(self) -> Drained:
        with self._lock:
            if not self._received:
                return Drained([], 0)
            drained = Drained(list(self._awards), self._received, self._per_badge,
                              self._revoked, self._per_event)
            self._awards.clear()
            self._received, self._per_badge = 0, Counter()
            self._revoked, self._per_event = Counter(), Counter()
            return drained


class AwardRate:
    """Awards per second over the last RATE_WINDOW seconds, oldest first."""

    def __init__(self, window: int = RATE_WINDOW):
        self.window = window
        self._buckets: deque[int] = deque([0] * window, maxlen=window)
        self._second: int | None = None

    def _advance(self, now: float) -> None:
        second = int(now)
        if self._second is None:
            self._second = second
        gap = min(second - self._second, self.window)
        self._buckets.extend([0] * max(gap, 0))
        self._second = max(second, self._second)

    def add(self, count: int, now: float) -> None:
        self._advance(now)
        self._buckets[-1] += count

    def series(self, now: float) -> list[int]:
        self._advance(now)
        return list(self._buckets)

    @property
    def last_full_second(self) -> int:
        return self._buckets[-2]

    @property
    def peak(self) -> int:
        return max(self._buckets)


@dataclass(frozen=True)
class AwardFilter:
    """Typed text: numbers are user ids, words are (parts of) badge codes or names.

    A row passes when it matches one of the users (if any were typed) and one of the
    badges (if any were typed): "star 12" shows user 12's Star awards.
    """

    users: frozenset[str] = frozenset()
    badges: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "AwardFilter":
        words = text.replace(",", " ").lower().split()
        return cls(frozenset(w for w in words if w.isdigit()),
                   tuple(w for w in words if not w.isdigit()))

    def __bool__(self) -> bool:
        return bool(self.users or self.badges)

    def __call__(self, award: Award) -> bool:
        if self.users and str(award.user_id) not in self.users:
            return False
        if self.badges:
            names = f"{award.code or ''}\n{award.name or ''}".lower()
            return any(word in names for word in self.badges)
        return True

    def describe(self) -> str:
        parts = [f"user {', '.join(sorted(self.users, key=int))}"] if self.users else []
        if self.badges:
            parts.append(f"badge ~ {' | '.join(self.badges)}")
        return " and ".join(parts)
