"""The console's remembered preferences (the theme), a small JSON file in the user's
data folder next to the embedded demo's (BADGE_CONSOLE_DATA_DIR overrides both).

Never fails the console: an unreadable or unwritable file means defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _path() -> Path:
    override = os.environ.get("BADGE_CONSOLE_DATA_DIR")
    if override:
        return Path(override) / "console.json"
    import platformdirs

    return Path(platformdirs.user_data_dir("badge-console")) / "console.json"


def load() -> dict:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(**changes) -> None:
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(load() | changes, indent=2), encoding="utf-8")
    except OSError:
        pass  # preferences are a convenience, never an error
