"""Live feed view: awards as they arrive, counts per badge, the award rate.

The core `AwardListener` (LISTEN + catch-up after every connect, reconnect with
backoff) runs on its own thread from the first time the view is shown until it is
unmounted. Its award callback only drops awards into an `AwardInbox`; its state
callback posts a `StateChanged` message. A 10 Hz timer on the UI side drains the inbox
and updates the rows, counts and sparkline in one go, so a flood costs ~10 updates a
second, not one per award. Rows and memory are bounded by CAPACITY.

Pause freezes the rows on screen; awards keep being counted and the newest CAPACITY of
them kept, so resume shows them. The filter (user ids, badge words) only narrows the
rows; counts and the rate always cover every award. Clear empties rows and counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Sparkline, Static

from ...core.connection import first_line, redact
from ...core.feed import Award, AwardListener, FeedState, PollSource
from ..state import console_app
from ..widgets.feed_log import AwardLog, header_line
from ..widgets.feed_stats import AwardFilter, AwardInbox, AwardRate

CAPACITY = 1_000  # rows kept on screen and in memory
FLUSH_EVERY = 0.1  # seconds between UI updates
READY_WAIT = 10.0  # how long the start worker waits for the first catch-up
STATE_STYLE = {"connecting": "yellow", "connected": "green", "caught_up": "green",
               "reconnecting": "yellow", "stopped": "red"}


class FeedView(Vertical):
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause/resume"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("c", "clear", "Clear"),
        Binding("t", "demo_traffic", "Demo traffic"),
        Binding("escape", "leave_filter", "Back to rows", show=False),
    ]
    HELP = (("↑ ↓ PgUp PgDn", "scroll the rows; new awards arrive at the top"),)

    @dataclass
    class StateChanged(Message):
        """The listener's connection state (posted from its thread)."""

        state: FeedState

    @dataclass
    class TrafficStopped(Message):
        note: str
        error: bool = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inbox = AwardInbox(CAPACITY)
        self.kept: deque[Award] = deque(maxlen=CAPACITY)  # newest last, for resume/filter
        self.counts: Counter = Counter()  # awards and grants per badge
        self.revoked: Counter = Counter()  # revocations per badge, counted apart
        self.events: Counter = Counter()  # award, grant, revoke
        self.names: dict[str, str] = {}
        self.rate = AwardRate()
        self.total = 0
        self.paused = False
        self.missed = 0  # awards that arrived while paused
        self.since = "opened"  # what the total counts from: "opened" or "cleared"
        self.award_filter = AwardFilter()
        self.state = FeedState("connecting")
        self.clock = time.monotonic
        self.listener: AwardListener | None = None
        self._ready = threading.Event()
        self._traffic_stop: threading.Event | None = None
        self._traffic_note = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="feed-state")
        with Horizontal(id="feed-filter-bar"):
            yield Static("Filter ", id="feed-filter-label")
            yield Input(placeholder="user ids and/or badge words, e.g. \"star 12\"; "
                                    "empty shows all", id="feed-filter", compact=True)
        with Horizontal(id="feed-body"):
            with Vertical(id="feed-main"):
                yield Static(header_line(), id="feed-columns")
                yield AwardLog(CAPACITY, id="feed-log")
            with Vertical(id="feed-side"):
                yield Static(Text("Awards per badge", style="bold"), classes="feed-title")
                yield Static("", id="feed-counts")
                yield Static(Text("Awards/s, last 60 s", style="bold"), classes="feed-title")
                yield Sparkline([0] * self.rate.window, id="feed-rate")
                yield Static("", id="feed-rate-text")
        yield Static("", id="feed-status")

    def on_mount(self) -> None:
        self._show_state()
        self._show_counts()
        self._show_status()
        # Mounted just after the first screen: listening from then on, so awards made
        # from any view (a backfill in Install) are in the feed when it is first shown.
        self.start_listener()

    def on_show(self) -> None:
        self.query_one(AwardLog).focus()

    def focus_home(self) -> None:
        self.query_one(AwardLog).focus()

    def on_unmount(self) -> None:
        if self._traffic_stop is not None:
            self._traffic_stop.set()
        if self.listener is not None:
            self.listener.stop(timeout=1.0)

    # ---- the listener (its thread) and the flush timer (UI thread) ------------------
    def start_listener(self) -> None:
        app = console_app(self)
        self.listener = AwardListener(app.db.dsn, self.inbox.put, self._on_state,
                                      badge_file=app.state.badge_file)
        self.listener.start()
        self.set_interval(FLUSH_EVERY, self.flush)
        self._wait_until_live()

    def _on_state(self, state: FeedState) -> None:  # listener thread: post, never touch
        if state.kind in ("caught_up", "reconnecting", "stopped"):
            self._ready.set()
        self.post_message(self.StateChanged(state))

    @work(thread=True, exit_on_error=False, group="feed-start")
    def _wait_until_live(self) -> None:
        """Ends once the first catch-up is done, so `settle` in tests waits for it."""
        self._ready.wait(READY_WAIT)

    def on_feed_view_state_changed(self, message: StateChanged) -> None:
        self.state = message.state
        self._show_state()

    def flush(self) -> None:
        """Merge whatever arrived since the last tick into rows, counts and rate."""
        drained = self.inbox.drain()
        now = self.clock()
        if drained.received:
            self.total += drained.received
            self.counts.update(drained.per_badge)
            self.revoked.update(drained.revoked)
            self.events.update(drained.per_event)
            for award in drained.awards:
                self.names.setdefault(award.code, award.name or award.code)
            self.rate.add(drained.received, now)
            self.kept.extend(drained.awards)
            if self.paused:
                self.missed += drained.received
            else:
                shown = [a for a in drained.awards if self.award_filter(a)] \
                    if self.award_filter else drained.awards
                self.query_one(AwardLog).add(shown)
            self._show_counts()
            self._show_status()
        self._show_rate(now)

    # ---- what is on screen ------------------------------------------------------------
    def _show_state(self) -> None:
        state, text = self.state, Text()
        style = STATE_STYLE.get(state.kind, "")
        if state.kind == "caught_up":
            polling = isinstance(self.listener and self.listener.source, PollSource)
            text.append("● connected", style=f"bold {style}")
            text.append(f"  caught up {state.count}", style=style)
            text.append(f"  ·  {state.detail}", style="bold cyan" if polling else "dim")
        elif state.kind == "connected":
            text.append("● connected", style=f"bold {style}")
            text.append("  catching up…", style="dim")
        elif state.kind == "reconnecting" or (state.kind == "connecting" and state.attempt):
            text.append(f"◌ reconnecting (attempt {state.attempt})", style=f"bold {style}")
            detail = state.detail if state.kind == "reconnecting" else "connecting…"
            text.append(f"  {detail}", style="dim")
        elif state.kind == "stopped":
            text.append("✕ stopped", style=f"bold {style}")
            text.append(f"  {state.detail}" if state.detail else "", style="dim")
        else:
            text.append("◌ connecting…", style=f"bold {style}")
        if self._traffic_stop is not None:
            text.append("   ▶ demo traffic on (t stops)", style="bold magenta")
        elif self._traffic_note:
            text.append(f"   {self._traffic_note}", style="magenta")
        self.query_one("#feed-state", Static).update(text)

    def _show_counts(self) -> None:
        if not self.counts and not self.revoked:
            self.query_one("#feed-counts", Static).update(Text("none yet", style="dim"))
            return
        text = Text()
        codes = [c for c, _ in (self.counts + self.revoked).most_common()]
        for code in codes[:12]:
            name = self.names.get(code, code)
            text.append(f"{self.counts[code]:>7,} ", style="bold")
            text.append(f"{name[:24 - 6 * bool(self.revoked[code])]}", style="yellow")
            if self.revoked[code]:
                text.append(f" −{self.revoked[code]:,}", style="bold red")
            text.append("\n")
        if len(codes) > 12:
            text.append(f"  and {len(codes) - 12} more badges", style="dim")
        text.rstrip()  # in place: the last line's newline
        self.query_one("#feed-counts", Static).update(text)

    def _show_rate(self, now: float) -> None:
        series = self.rate.series(now)
        sparkline = self.query_one("#feed-rate", Sparkline)
        if list(sparkline.data or ()) != series:
            sparkline.data = series
        text = Text()
        text.append(f"{self.rate.last_full_second:,}/s", style="bold")
        text.append(f" now  ·  peak {self.rate.peak:,}/s", style="dim")
        self.query_one("#feed-rate-text", Static).update(text)

    def _show_status(self) -> None:
        log = self.query_one(AwardLog)
        rows = len(log.rows)
        log.empty_text = (f"No award matches the filter ({self.total:,} arrived)"
                          if self.award_filter and self.total else "Waiting for awards…")
        log.refresh()
        text = Text()
        if self.paused:
            text.append(" PAUSED ", style="bold reverse yellow")
            text.append(f" {self.missed:,} new since  ·  ", style="yellow")
        text.append(f"{self.events['award']:,} award(s)", style="bold")
        if self.events["grant"]:
            text.append(f", {self.events['grant']:,} granted", style="bold green")
        if self.events["revoke"]:
            text.append(f", {self.events['revoke']:,} revoked", style="bold red")
        text.append(f" since {self.since}", style="bold")
        text.append(f"  ·  {rows:,} row(s) shown (newest {CAPACITY:,} kept)", style="dim")
        if self.award_filter:
            text.append(f"  ·  filter: {self.award_filter.describe()}", style="cyan")
        self.query_one("#feed-status", Static).update(text)

    def _refill(self) -> None:
        keep = self.award_filter
        self.query_one(AwardLog).replace(a for a in reversed(self.kept) if not keep or keep(a))
        self._show_status()

    # ---- actions ------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.missed = 0
            self._refill()
        self._show_status()

    def action_clear(self) -> None:
        self.inbox.drain()
        self.kept.clear()
        self.counts.clear()
        self.revoked.clear()
        self.events.clear()
        self.total = self.missed = 0
        self.since = "cleared"
        self.query_one(AwardLog).clear_rows()
        self._show_counts()
        self._show_status()

    def action_focus_filter(self) -> None:
        self.query_one("#feed-filter", Input).focus()

    def action_leave_filter(self) -> None:
        self.query_one(AwardLog).focus()

    @on(Input.Changed, "#feed-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.award_filter = AwardFilter.parse(event.value)
        if not self.paused:
            self._refill()
        self._show_status()

    @on(Input.Submitted, "#feed-filter")
    def _filter_submitted(self) -> None:
        self.query_one(AwardLog).focus()

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "demo_traffic":  # the key exists only on the embedded demo
            return console_app(self).state.demo
        return True

    def action_demo_traffic(self) -> None:
        if self._traffic_stop is not None:
            self._traffic_stop.set()
            return
        state = console_app(self).state
        if state.read_only:
            self.app.notify("Refused under --read-only: demo traffic writes rows.",
                            severity="error")
            return
        if not state.demo:
            self.app.notify("Demo traffic only runs on the embedded demo database.",
                            severity="warning")
            return
        self._traffic_stop = threading.Event()
        self._traffic_note = ""
        self._run_traffic(self._traffic_stop)
        self._show_state()

    @work(thread=True, exclusive=True, exit_on_error=False, group="feed-traffic")
    def _run_traffic(self, stop: threading.Event) -> None:
        from ...core.traffic import run_demo_traffic

        dsn = console_app(self).db.dsn
        try:
            stats = run_demo_traffic(dsn, stop=stop)
        except Exception as exc:  # noqa: BLE001 - shown as one sentence
            self.post_message(self.TrafficStopped(redact(first_line(exc), dsn), error=True))
            return
        self.post_message(self.TrafficStopped(
            f"demo traffic stopped after {stats.total:,} write(s)"))

    def on_feed_view_traffic_stopped(self, message: TrafficStopped) -> None:
        self._traffic_stop = None
        self._traffic_note = message.note
        if message.error:
            self.app.notify(message.note, severity="error")
        self._show_state()

    def system_commands(self):
        """Commands the app puts in its command palette."""
        yield SystemCommand("Live feed: pause or resume", "Freeze the rows (counting goes "
                            "on) or catch up (key space)", self.action_toggle_pause)
        yield SystemCommand("Live feed: clear", "Empty the rows and counts (key c)",
                            self.action_clear)
        yield SystemCommand("Live feed: filter", "Show only some users or badges (key /)",
                            self._palette_filter)
        if console_app(self).state.demo:
            yield SystemCommand("Live feed: demo traffic", "Start or stop realistic writes "
                                "on the embedded demo (key t)", self.action_demo_traffic)

    def _palette_filter(self) -> None:
        console_app(self).action_show_view("feed")
        self.action_focus_filter()
