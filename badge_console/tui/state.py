"""What the console's views share, in one object that announces its changes.

`ConsoleState` holds the session's facts every view checks before it acts (database
name, --read-only, the embedded demo, a hot standby) and the badge.json working copy:
the file, why it is not loaded, whether it has unsaved edits. Views read it typed,
`console_app(self).state`, and change the working copy only through its methods; each
change posts `BadgeFileState` to the app, which updates the header and tells the views.
The Badges editor writes a badge's fields in place; the Badges view then calls
`edited()`.

`console_app(node)` is the one cast from Textual's `App` to ours, so views reach the
app's connections and state without an untyped attribute access each time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, cast

from ..core.definitions import Badge, BadgeFile, save_badge_file
from .badge_file import load
from .messages import BadgeFileState

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.message import Message

    from .app import BadgeConsoleApp

CODE_LENGTH = 50  # the longest badge code (SPEC §2)


def console_app(node: DOMNode) -> BadgeConsoleApp:
    """The running console app, typed, for any widget or view in it."""
    return cast("BadgeConsoleApp", node.app)


class ConsoleState:
    def __init__(self, badges_path: Path, database: str, read_only: bool, demo: bool,
                 announce: Callable[[Message], object]):
        self.badges_path = Path(badges_path)
        self.database = database  # shown to the operator: never holds a password
        self.read_only = read_only
        self.demo = demo  # the embedded demo database: the Live feed offers demo traffic
        self.standby = False  # a hot standby: known once the first query ran (ServerInfo)
        self._announce = announce
        self._dirty = False
        self._badge_file, self._load_error = load(self.badges_path)

    @property
    def badge_file(self) -> BadgeFile | None:
        """The working copy (unsaved edits included); None while the file is unusable."""
        return self._badge_file

    @property
    def load_error(self) -> str:
        """Why badge.json is not loaded, one sentence; "" when it is."""
        return self._load_error

    @property
    def dirty(self) -> bool:
        """The working copy has edits not saved to disk."""
        return self._dirty

    def _changed(self, dirty: bool) -> None:
        self._dirty = dirty
        self._announce(BadgeFileState(dirty))

    def edited(self) -> None:
        """A badge of the working copy was changed in place (the editor)."""
        self._changed(True)

    def unique_code(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`… when a badge has it (cut to the code length)."""
        codes = {b.code for b in self._badge_file.badges} if self._badge_file else set()
        code, n = base[:CODE_LENGTH], 2
        while code in codes:
            suffix = f"_{n}"
            code, n = base[:CODE_LENGTH - len(suffix)] + suffix, n + 1
        return code

    def add_badge(self, badge: Badge) -> int:
        """Append to the working copy; the new badge's index."""
        bf = self._loaded()
        bf.badges.append(badge)
        self._changed(True)
        return len(bf.badges) - 1

    def remove_badge(self, index: int) -> Badge:
        removed = self._loaded().badges.pop(index)
        self._changed(True)
        return removed

    def save(self) -> Path:
        """Write the working copy to its file (OSError when that fails); its path."""
        bf = self._loaded()
        save_badge_file(bf)
        self._changed(False)
        return bf.path or self.badges_path

    def reload(self) -> Path:
        """Read badge.json from disk again, dropping unsaved edits; its path."""
        self._badge_file, self._load_error = load(self.badges_path)
        self._changed(False)
        return self.badges_path

    def _loaded(self) -> BadgeFile:
        if self._badge_file is None:  # callers check badge_file first
            raise RuntimeError(f"badge.json is not loaded: {self._load_error}")
        return self._badge_file
