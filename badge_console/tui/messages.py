"""Messages the whole app listens to; view-local ones live inside their view class."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class ConnectionDropped(Message):
    """A worker's query raised db.ConnectionLost; the app shows a banner and reconnects."""

    reason: str


@dataclass
class ConnectionRestored(Message):
    """The reconnect loop got through; views reload what they show."""

    server_version: str


@dataclass
class ServerInfo(Message):
    server_version: str
    standby: bool = False  # a hot standby: the console reads, every write is refused


@dataclass
class BadgeFileState(Message):
    """ConsoleState's badge.json changed: edits made, saved, or reloaded."""

    dirty: bool


@dataclass
class DatabaseChanged(Message):
    """An action changed what is installed or awarded; the other views reload."""

    source_view: object = None  # the view that made the change (it updates itself)
