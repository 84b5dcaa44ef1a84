"""The live feed of awards: told by LISTEN/NOTIFY or found by polling, caught up from the
award table after every connect.

`AwardListener` is a plain object (no Textual) used by `badge-console watch` and the
console's Live feed view. It holds one dedicated autocommit connection and, per connect,
a source (toolong's watchers: one interface, a push and a poll implementation): LISTEN
where the server can tell us, polling the award table on a hot standby (no LISTEN during
recovery), behind a transaction pooler (notifications reach whichever client holds the
server connection) or when asked. On start and after every reconnect it first LISTENs
(if it does), then reads the award table for awards it has not seen, so an award
committed while it was disconnected is never missing; awards are de-duplicated by id, so
none is delivered twice. A lost connection or a server restart makes it reconnect by
itself with backoff.

What is delivered are events (sqlgen_events.event_payload): awards, manual grants and
revocations, keyed by their id in badge_console.events, which every read takes them
from; on a database installed before that table existed, awards keyed by their id in
the award table.

Why "unseen ids" instead of "id > last seen": ids are taken when a row is inserted, not
when it commits, so a transaction may commit award 10 after award 11 was delivered.
Every read (catch-up, poll, idle check) therefore asks for the ids above the highest seen
and for the gaps below it (ids within CATCHUP_WINDOW not delivered yet).
"""

from __future__ import annotations

import json
import selectors
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psycopg
from psycopg import sql

from . import catalog
from . import topology
from .connection import connect, first_line, redact
from .definitions import DEFAULT_AWARD_TABLE, DEFAULT_CHANNEL
from .errors import DatabaseUnreachable
from .sqlgen import EVENTS, SCHEMA
from .sqlgen_events import event_payload

CATCHUP_WINDOW = 10_000  # ids below the highest seen whose late commit is still looked for
CATCHUP_PAGE = 5_000
BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)  # seconds between reconnect attempts
POLL = 0.25  # how often a wait for notifications looks at the stop flag
PING_AFTER = 5.0  # idle seconds after which a LISTEN feed reads the table (and the link)
POLL_EVERY = 1.0  # seconds between reads when polling was chosen, not asked for
# a lost or unreachable server, worth reconnecting for; any other error right after a
# connect (permission denied, ...) would only repeat
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnreachable)
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}


@dataclass(slots=True)
class Award:
    """One event as notified (SPEC §3 payload): `event` is award, grant or revoke (of the
    award `id`), `at` when it happened; `op` is None for history read by a catch-up.

    `payload` is the JSON text as PostgreSQL sent it, on one line (catch-ups build the
    same text), so a front end that prints JSON needs no second encoding.
    """

    id: int
    user_id: object
    code: str
    name: str
    awarded_at: str | None
    table: str | None
    op: str | None
    event: str = "award"
    event_id: int | None = None  # None from triggers installed before the events table
    at: str | None = None
    payload: str = field(default="", repr=False, compare=False)

    @property
    def key(self) -> int:
        """What a feed de-duplicates and resumes (--since) by: the event id, else the award's."""
        return self.id if self.event_id is None else self.event_id

    @classmethod
    def from_payload(cls, payload: str) -> "Award | None":
        """The award in a notification payload, or None for anything else on the channel."""
        try:
            doc = json.loads(payload)
            award_id = doc["id"]
            if not isinstance(award_id, int):
                return None
            if "\n" in payload or "\r" in payload:  # keep it one line (hand-made NOTIFY)
                payload = json.dumps(doc, ensure_ascii=False)
            get = doc.get
            event_id = get("event_id")
            return cls(award_id, get("user_id"), get("code"), get("name"),
                       get("awarded_at"), get("table"), get("op"), get("event") or "award",
                       event_id if isinstance(event_id, int) else None, get("at"), payload)
        except (ValueError, TypeError, KeyError):
            return None

    def as_dict(self) -> dict:
        return {"id": self.id, "user_id": self.user_id, "code": self.code, "name": self.name,
                "awarded_at": self.awarded_at, "table": self.table, "op": self.op,
                "event": self.event, "event_id": self.event_id, "at": self.at}


@dataclass(frozen=True)
class FeedState:
    """What the listener is doing: connecting, connected, caught_up, reconnecting, stopped.

    `detail` of connected and caught_up says how awards arrive (the source's describe())."""

    kind: str
    detail: str = ""
    count: int = 0  # awards delivered by a catch-up
    attempt: int = 0  # reconnect attempt, 1 for the first retry


@dataclass(frozen=True)
class FeedSettings:
    channel: str
    award_table: str


def read_feed_settings(conn: psycopg.Connection, bf=None) -> FeedSettings:
    """Channel and award table: as installed (badge_console.settings), else badge.json."""
    channel = bf.channel if bf is not None and isinstance(bf.channel, str) else DEFAULT_CHANNEL
    award = bf.award_table if bf is not None and isinstance(bf.award_table, str) \
        else DEFAULT_AWARD_TABLE
    if catalog.relation_exists(conn, SCHEMA, "settings"):
        rows = dict(conn.execute(sql.SQL("SELECT key, value FROM {}").format(
            sql.Identifier(SCHEMA, "settings"))).fetchall())
        channel, award = rows.get("channel", channel), rows.get("award_table", award)
    return FeedSettings(channel, award)


def unseen_awards_query(conn, award_name: str
                        ) -> tuple[sql.Composed, sql.Identifier] | None:
    """Events with an id in a list or above an id, as the JSON text a notification carries,
    and the table they are read from: badge_console.events, else (installed before it) the
    award table.

    Parameters: (gap ids, top id, limit). The one query every read of the feed runs; None
    without either table.
    """
    if catalog.relation_exists(conn, SCHEMA, EVENTS):
        events = sql.Identifier(SCHEMA, EVENTS)
        return sql.SQL("SELECT e.id, {payload} FROM {events} AS e"
                       " WHERE e.id = ANY(%s::bigint[]) OR e.id > %s::bigint"
                       " ORDER BY e.id LIMIT %s").format(
            payload=event_payload("e"), events=events), events
    ref = catalog.resolve_table(conn, award_name)
    if ref is None:
        return None
    cols = {c.name for c in catalog.columns(conn, ref)}
    stamp = sql.SQL("a.awarded_at") if "awarded_at" in cols else sql.SQL("NULL::timestamptz")
    award = sql.Identifier(*ref.parts)
    installed = catalog.relation_exists(conn, SCHEMA, "installed")
    table, join = sql.SQL("NULL::text"), sql.SQL("")
    if installed:
        table = sql.SQL("i.trigger_table")
        join = sql.SQL(" LEFT JOIN {} AS i ON i.code = a.code").format(
            sql.Identifier(SCHEMA, "installed"))
    return sql.SQL(
        "SELECT a.id, json_build_object('id', a.id, 'user_id', a.user_id, 'code', a.code,"
        " 'name', a.name, 'awarded_at', {stamp}, 'table', {table}, 'op', NULL)::text"
        " FROM {award} AS a{join} WHERE a.id = ANY(%s::bigint[]) OR a.id > %s::bigint"
        " ORDER BY a.id LIMIT %s").format(
        stamp=stamp, table=table, award=award, join=join), award


class FeedSource:
    """How new awards reach the feed on one connection, after the catch-up."""

    def describe(self, channel: str) -> str:
        raise NotImplementedError

    def open(self, feed: "AwardListener", conn: psycopg.Connection) -> None:
        """Before the catch-up, so that nothing committed meanwhile is missed."""

    def follow(self, feed: "AwardListener", conn: psycopg.Connection) -> None:
        """Deliver awards until the feed stops; a lost connection raises."""
        raise NotImplementedError


class ListenSource(FeedSource):
    """LISTEN on the channel; an idle connection also reads the table now and then."""

    def describe(self, channel: str) -> str:
        return f"listening on {channel}"

    def open(self, feed, conn) -> None:
        conn.add_notify_handler(feed.on_notify)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(feed.channel)))

    def follow(self, feed, conn) -> None:
        """Wait on the socket; deliver every notification a read brought in, in order.

        A plain select() loop over libpq (consume input, drain notifies) costs less per
        award than psycopg's notifies() generator; notifications that arrive while a query
        runs (catch-up) reach `on_notify` through the connection's notify handler. After
        PING_AFTER idle seconds a catch-up checks the link and finds any award whose
        notification went elsewhere.
        """
        pgconn, stop, encoding = conn.pgconn, feed.stop_event, conn.info.encoding
        deliver, parse = feed.deliver, Award.from_payload
        idle_since = time.monotonic()
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ)
            while not stop.is_set():
                # notifies() also parses what libpq already buffered (e.g. behind a result)
                while (notify := pgconn.notifies()) is not None:
                    deliver(parse(notify.extra.decode(encoding)))
                if selector.select(POLL):
                    pgconn.consume_input()  # a lost connection raises OperationalError here
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > PING_AFTER:  # a silent peer may be gone
                    feed.catch_up(conn)
                    idle_since = time.monotonic()


@dataclass(frozen=True)
class PollSource(FeedSource):
    """Read the award table every `interval` seconds: no LISTEN, no session state."""

    interval: float
    reason: str = "asked"  # asked | standby | transaction pooler | unknown pooler

    def describe(self, channel: str) -> str:
        why = {"standby": " (hot standby: no LISTEN during recovery)",
               "transaction pooler": " (transaction pooler: notifications would reach "
                                     "other clients)",
               "unknown pooler": " (a pooler whose mode could not be told: LISTEN might "
                                 "miss awards)"}
        return f"polling every {self.interval:g} s{why.get(self.reason, '')}"

    def follow(self, feed, conn) -> None:
        while not feed.stop_event.wait(self.interval):
            feed.catch_up(conn)


def choose_source(conn: psycopg.Connection, dsn: str, poll: float | None) -> FeedSource:
    """Polling when asked, on a hot standby or behind a transaction pooler; else LISTEN."""
    if poll is not None:
        return PollSource(poll)
    if topology.is_standby(conn):
        return PollSource(POLL_EVERY, "standby")
    mode = topology.pooling(conn, dsn)
    if mode in ("transaction", "unknown"):  # polling is right in every mode, LISTEN not
        return PollSource(POLL_EVERY, f"{mode} pooler")
    return ListenSource()


class AwardListener:
    """Follow the awards on a dedicated connection; `on_award` gets each award exactly once.

    Callbacks run on the thread that runs the listener (`run()` blocks; `start()` runs it
    on a daemon thread). `since`: also deliver awards with a higher id that already exist;
    without it the feed starts with the awards committed from now on. `poll`: read the
    table every `poll` seconds instead of LISTEN; None chooses per connection.
    """

    def __init__(self, dsn: str, on_award: Callable[[Award], None],
                 on_state: Callable[[FeedState], None] | None = None, *,
                 channel: str | None = None, award_table: str | None = None,
                 since: int | None = None, badge_file=None, poll: float | None = None):
        self.dsn = dsn
        self.on_award = on_award
        self.on_state = on_state or (lambda state: None)
        self.channel = channel
        self.award_table = award_table
        self.badge_file = badge_file
        self.poll = poll
        self.source: FeedSource | None = None  # of the current (or last) connection
        self.delivered = 0
        self._floor: int | None = since  # never deliver ids at or below this
        self._seen: set[int] = set()
        self._max_seen = since or 0
        self._query: tuple[sql.Composed, sql.Identifier] | None = None  # and its table
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    # -- lifetime -------------------------------------------------------------------

    def start(self) -> None:
        """Run on a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._run_quietly, name="award-listener",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        """Set by stop(); sources wait on it."""
        return self._stop

    def _run_quietly(self) -> None:
        try:
            self.run(retry_first=True)
        except Exception as exc:  # a thread has nobody to raise to: report it as a state
            self._state(FeedState("stopped", redact(first_line(exc), self.dsn)))

    def run(self, retry_first: bool = False) -> None:
        """Follow until stop(). The first connection's failure raises unless retry_first."""
        attempt, connected_once = 0, False
        while not self._stop.is_set():
            opened = False
            try:
                self._state(FeedState("connecting", attempt=attempt))
                self._conn = connect(self.dsn, autocommit=True, **KEEPALIVES)
                self._conn.prepare_threshold = None  # no server-side statement (poolers)
                try:
                    source = self._open(self._conn)
                    opened = connected_once = True
                    attempt = 0
                    source.follow(self, self._conn)
                finally:
                    self._close()
            except (psycopg.Error, DatabaseUnreachable) as exc:
                if not connected_once and not retry_first:
                    raise
                if not opened and not isinstance(exc, TRANSIENT):
                    raise  # the server said no to a fresh connection: it will again
                attempt += 1
                delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
                detail = redact(first_line(exc), self.dsn)
                self._state(FeedState("reconnecting", f"{detail}; retrying in {delay:g}s",
                                      attempt=attempt))
                self._stop.wait(delay)
        self._state(FeedState("stopped"))

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection must not hide why it broke
                pass

    # -- the work ---------------------------------------------------------------------

    def _state(self, state: FeedState) -> None:
        self.on_state(state)

    def _open(self, conn: psycopg.Connection) -> FeedSource:
        """Settings, source, history, then the catch-up; returns the source to follow."""
        if self.channel is None or self.award_table is None:
            settings = read_feed_settings(conn, self.badge_file)
            self.channel = self.channel or settings.channel
            self.award_table = self.award_table or settings.award_table
        self.source = source = choose_source(conn, self.dsn, self.poll)
        self._query = unseen_awards_query(conn, self.award_table)
        if self._floor is None:  # first connect without `since`
            self._mark_existing(conn)
        source.open(self, conn)
        how = source.describe(self.channel)
        self._state(FeedState("connected", how))
        # LISTEN first, then read: an award committed in between is in both, shown once.
        count = self.catch_up(conn)
        self._state(FeedState("caught_up", how, count=count))
        return source

    def _mark_existing(self, conn: psycopg.Connection) -> None:
        """Before the first LISTEN: what exists now is history, not news (not delivered).

        Done before LISTEN so that an award committed meanwhile is not taken for history
        while its notification is still on the way; the catch-up after LISTEN shows it.
        """
        if self._query is None:  # nothing installed yet: every award that comes later is news
            self._floor = 0
            return
        table = self._query[1]
        top = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(
            table)).fetchone()[0]
        rows = conn.execute(sql.SQL("SELECT id FROM {} WHERE id > %s").format(table),
                            (top - CATCHUP_WINDOW,)).fetchall()
        self._seen.update(r[0] for r in rows)
        self._floor, self._max_seen = top - CATCHUP_WINDOW, max(self._max_seen, top)

    def _gaps(self) -> list[int]:
        """Ids below the highest seen, within the window, not delivered (yet)."""
        seen = self._seen
        low = max(self._floor, self._max_seen - CATCHUP_WINDOW)
        return [i for i in range(low + 1, self._max_seen + 1) if i not in seen]

    def catch_up(self, conn: psycopg.Connection) -> int:
        """Deliver the awards in the table not seen yet: above the top and in the gaps."""
        if self._query is None:  # the award table may have been created since
            self._query = unseen_awards_query(conn, self.award_table)
            if self._query is None:
                return 0
        gaps, top, count = self._gaps(), self._max_seen, 0
        while not self._stop.is_set():
            rows = conn.execute(self._query[0], (gaps, top, CATCHUP_PAGE)).fetchall()
            for _, payload in rows:
                if self.deliver(Award.from_payload(payload)):
                    count += 1
            if len(rows) < CATCHUP_PAGE:
                break
            top = rows[-1][0]
            gaps = [g for g in gaps if g > top]
        return count

    def on_notify(self, notify) -> None:
        self.deliver(Award.from_payload(notify.payload))

    def deliver(self, award: Award | None) -> bool:
        if award is None:
            return False
        award_id, seen = award.key, self._seen
        if award_id in seen or (self._floor is not None and award_id <= self._floor):
            return False
        seen.add(award_id)
        if award_id > self._max_seen:
            self._max_seen = award_id
        if len(seen) > 3 * CATCHUP_WINDOW:
            keep = self._max_seen - CATCHUP_WINDOW
            self._seen = {i for i in seen if i > keep}
        self.delivered += 1
        self.on_award(award)
        return True
