"""How a command ends on a signal: Ctrl-C lets long work stop between steps, SIGTERM ends
it like Ctrl-C so psycopg cancels the running query and no backend keeps working for us.
"""

from __future__ import annotations

import signal
import threading


def stop_on_ctrl_c():
    """An Event set by the first Ctrl-C (work stops between steps); a second one interrupts.

    Returns the event and the function that puts the previous handler back."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    return stop, lambda: signal.signal(signal.SIGINT, previous)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def end_on_sigterm():
    """Make SIGTERM end the command like Ctrl-C; returns the handler to put back afterwards
    (None off the main thread, where no handler can be set: main() run by a test)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)


def restore_sigterm(previous) -> None:
    if previous is not None:  # main() run in-process (tests) leaves no handler behind
        signal.signal(signal.SIGTERM, previous)
