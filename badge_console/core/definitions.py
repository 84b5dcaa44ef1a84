"""badge.json: load both forms (seed list, settings object), check the file, save atomically.

Loading never raises anything but DefinitionError: whatever bytes a user hands us, they
get one sentence per problem. Problems inside single badges are reported by
`check_definitions`, so the editor can still show (and keep) a half-broken file. This
raw form is for editing and saving; the engine works from the typed form (model.py) of
the badges the checks passed, and from `BadgeFile.settings`: the defaults live here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import BadgeFileMissing, DefinitionError, Problem

if TYPE_CHECKING:
    from .levels import LevelOf

Operation = Literal["insert", "update", "delete"]
OnError = Literal["skip", "raise"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
ON_ERROR: tuple[OnError, ...] = get_args(OnError)
CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,49}")
REQUIRED = ("name", "code", "condition", "trigger_condition", "trigger_table", "user_field")
OPTIONAL = ("description", "enabled", "on_error", "value", "levels")
SERIES_KEYS = ("value", "levels")  # a series (levels.py) has these instead of condition
# The order to_dict writes keys in: a series' value and levels where a condition would be.
KEY_ORDER = ("name", "code", "condition", "value", "levels", "trigger_condition",
             "trigger_table", "user_field", "description", "enabled", "on_error")
SETTINGS = ("award_table", "channel", "badges")
DEFAULT_AWARD_TABLE = "badges_badge"
DEFAULT_CHANNEL = "badge_awarded"
DEFAULT_ENABLED = True
DEFAULT_ON_ERROR: OnError = "skip"
MAX_IDENTIFIER_BYTES = 63
# A trigger condition runs on every write; megabytes of SQL there are a mistake, and
# parsing them would stall the editor. Longer logic belongs in a SQL function.
MAX_CONDITION_CHARS = 100_000
# NUL cannot be stored in PostgreSQL text, and other control characters in SQL are a
# paste accident or an attempt to hide something; tab, newline and carriage return stay.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Badge:
    """One badge as written in badge.json; values keep whatever type the file had."""

    name: Any = None
    code: Any = None
    condition: Any = None
    trigger_condition: Any = None
    trigger_table: Any = None
    user_field: Any = None
    description: Any = None
    enabled: Any = DEFAULT_ENABLED
    on_error: Any = DEFAULT_ON_ERROR
    value: Any = None  # a series: the SQL value its levels compare (levels.py)
    levels: Any = None  # a series: its list of {"code", "name", "at"}
    present: frozenset = frozenset()  # keys the file actually had
    extra: dict = field(default_factory=dict)  # unknown keys, kept so a save loses nothing
    # Set on the badges levels.expand makes of a series, never read from or written to
    # the file: which series and level the badge is.
    level_of: "LevelOf | None" = None

    @classmethod
    def from_dict(cls, data: dict) -> "Badge":
        known = {k: v for k, v in data.items() if k in REQUIRED + OPTIONAL}
        extra = {k: v for k, v in data.items() if k not in REQUIRED + OPTIONAL}
        return cls(**known, present=frozenset(data), extra=extra)

    @property
    def operations(self) -> tuple[str, ...]:
        """trigger_condition as a tuple of operations (string or list accepted)."""
        value = self.trigger_condition
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        ops = []
        for item in items:
            if isinstance(item, str) and item.lower() in OPERATIONS and item.lower() not in ops:
                ops.append(item.lower())
        return tuple(ops)

    @property
    def is_series(self) -> bool:
        """An entry with `value`/`levels` instead of `condition`: one badge per level."""
        return any(key in self.present for key in SERIES_KEYS)

    @property
    def is_enabled(self) -> bool:
        return self.enabled is not False

    @property
    def valid_code(self) -> str | None:
        """The code when it is one (a string CODE_RE accepts): what Problems point at."""
        return self.code if isinstance(self.code, str) and CODE_RE.fullmatch(self.code) else None

    def to_dict(self) -> dict:
        out: dict = {}
        for key in KEY_ORDER:
            value = getattr(self, key)
            if key == "condition" and self.is_series and key not in self.present:
                continue
            if key in self.present or key in REQUIRED \
                    or value not in (None, DEFAULT_ENABLED, DEFAULT_ON_ERROR):
                if key == "description" and value is None:
                    continue
                out[key] = value
        out.update(self.extra)
        return out

    def definition(self) -> dict:
        """The parts that shape the installed trigger (what the fingerprint covers)."""
        return {
            "name": self.name, "code": self.code, "condition": self.condition,
            "operations": list(self.operations), "trigger_table": self.trigger_table,
            "user_field": self.user_field, "on_error": self.on_error or DEFAULT_ON_ERROR,
        }

    def copy(self, **changes) -> "Badge":
        return replace(self, **changes)


@dataclass(frozen=True)
class Settings:
    """award_table and channel as the engine uses them: the file's text, else the default
    (a value that is not text is reported by check_definitions, never used)."""

    award_table: str = DEFAULT_AWARD_TABLE
    channel: str = DEFAULT_CHANNEL


@dataclass
class BadgeFile:
    """The whole file: settings, badges, and what was on disk when it was read."""

    badges: list[Badge]
    award_table: Any = DEFAULT_AWARD_TABLE
    channel: Any = DEFAULT_CHANNEL
    path: Path | None = None
    form: str = "object"  # "list" (seed form) or "object"
    disk_digest: str | None = None  # sha256 of the bytes last read or written
    setting_problems: list[Problem] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(
            self.award_table if isinstance(self.award_table, str) else DEFAULT_AWARD_TABLE,
            self.channel if isinstance(self.channel, str) else DEFAULT_CHANNEL)

    def by_code(self, code: str) -> Badge | None:
        return next((b for b in self.badges if b.code == code), None)

    def each_badge(self) -> list[tuple[int, Badge]]:
        """Every badge the engine works on, with the index of its entry in the file: a
        series entry stands for its levels, each a badge of its own (levels.expand)."""
        from .levels import expand  # pglast import only when badges are worked on

        return [(index, badge) for index, entry in enumerate(self.badges)
                for badge in expand(entry)]

    def to_json(self) -> str:
        badges = [b.to_dict() for b in self.badges]
        if self.form == "list" and self.award_table == DEFAULT_AWARD_TABLE \
                and self.channel == DEFAULT_CHANNEL:
            doc: Any = badges
        else:
            doc = {"award_table": self.award_table, "channel": self.channel, "badges": badges}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    def changed_on_disk(self) -> bool:
        """True when the file on disk is no longer what we read or wrote last."""
        if self.path is None:
            return False
        try:
            current = _digest(self.path.read_bytes())
        except FileNotFoundError:
            return self.disk_digest is not None
        return current != self.disk_digest


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _pairs_without_duplicates(pairs):
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key '{key}' appears twice in one object")
        seen[key] = value
    return seen


def _json_problem(text: str, exc: Exception) -> Problem:
    if isinstance(exc, json.JSONDecodeError):
        message = f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    elif isinstance(exc, RecursionError):
        message = "JSON is nested too deeply to be a badge file"
    else:
        message = f"JSON error: {exc}"
    return Problem(None, None, None, "json", message + "; fix the file and load it again")


def parse_badge_file(data: bytes | str, path: str | Path = "badge.json") -> BadgeFile:
    """Parse badge.json content; raise DefinitionError for anything unusable as a whole."""
    where = str(path)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DefinitionError(where, [Problem(
                None, None, None, "encoding",
                f"not UTF-8 (bad byte at offset {exc.start}); save the file as UTF-8")]) from None
        raw = data
    else:
        text, raw = data, data.encode("utf-8")
    try:
        doc = json.loads(text, object_pairs_hook=_pairs_without_duplicates,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise DefinitionError(where, [_json_problem(text, exc)]) from None

    problems: list[Problem] = []
    settings: dict = {}
    if isinstance(doc, list):
        form, items = "list", doc
    elif isinstance(doc, dict):
        form = "object"
        for key in doc:
            if key not in SETTINGS:
                problems.append(Problem(None, None, key, "unknown-key",
                                        f"unknown setting; use only {', '.join(SETTINGS)}"))
        if "badges" not in doc:
            raise DefinitionError(where, problems + [Problem(
                None, None, "badges", "missing-key", "missing; add a list of badges")])
        items = doc["badges"]
        settings = {k: doc[k] for k in ("award_table", "channel") if k in doc}
    else:
        raise DefinitionError(where, [Problem(
            None, None, None, "shape",
            "must be a JSON list of badges or an object with a 'badges' list")])
    if not isinstance(items, list):
        raise DefinitionError(where, [Problem(None, None, "badges", "type", "must be a list")])

    badges = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            badges.append(Badge.from_dict(item))
        else:
            problems.append(Problem(index, None, None, "type",
                                    "must be a JSON object with the badge keys"))
            badges.append(Badge(present=frozenset(), extra={"__invalid__": item}))
    bf = BadgeFile(badges=badges, path=Path(path), form=form, disk_digest=_digest(raw),
                   setting_problems=problems, **settings)
    return bf


def load_badge_file(path: str | Path) -> BadgeFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadgeFileMissing(str(path)) from None
    except OSError as exc:
        raise DefinitionError(str(path), [Problem(
            None, None, None, "unreadable", f"cannot be read ({exc.strerror})")]) from None
    return parse_badge_file(data, path)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _quoted(value: Any) -> str:
    """The offending value as the file has it, short enough for one line."""
    text = json.dumps(value, ensure_ascii=False)
    text = text[:60] + "..." if len(text) > 63 else text
    return f"'{text[1:-1]}'" if isinstance(value, str) else text


def _check_name_setting(key: str, value: Any) -> list[Problem]:
    if not _is_text(value):
        return [Problem(None, None, key, "type", "must be a non-empty string")]
    if len(value.encode()) > 2 * MAX_IDENTIFIER_BYTES + 1:
        return [Problem(None, None, key, "too-long",
                        f"longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte identifiers")]
    return []


def _check_badge(index: int, badge: Badge) -> list[Problem]:
    code = badge.valid_code
    problems: list[Problem] = []

    def add(key, kind, message):
        problems.append(Problem(index, code, key, kind, message))

    if "__invalid__" in badge.extra:
        return []  # already reported as a non-object entry
    for key in badge.extra:
        add(key, "unknown-key", f"unknown key; badge keys are {', '.join(REQUIRED + OPTIONAL)}")
    for key in REQUIRED:
        if key not in badge.present and not (key == "condition" and badge.is_series):
            add(key, "missing-key", "missing; every badge needs it (a series: value and "
                                    "levels instead of condition)" if key == "condition"
                else "missing; every badge needs it")
    for key in ("name", "condition", "trigger_table", "user_field"):
        if key in badge.present and not _is_text(getattr(badge, key)):
            add(key, "type", "must be a non-empty string")
    if "code" in badge.present and code is None:
        add("code", "code", f"{_quoted(badge.code)} must be lowercase letters, digits or '_', "
                            "start with a letter, at most 50 characters")
    if "trigger_condition" in badge.present:
        value = badge.trigger_condition
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        bad = items is None or not items or any(
            not isinstance(i, str) or i.lower() not in OPERATIONS for i in items)
        if bad:
            add("trigger_condition", "operation", f"{_quoted(value)} must be 'insert', "
                "'update' or 'delete', or a non-empty list of them")
    if _is_text(badge.condition) and len(badge.condition) > MAX_CONDITION_CHARS:
        add("condition", "too-long", f"longer than {MAX_CONDITION_CHARS:,} characters; move "
                                     "the logic into a SQL function and call it")
    for key in ("trigger_table", "user_field"):
        value = getattr(badge, key)
        if _is_text(value) and len(value.encode()) > (2 * MAX_IDENTIFIER_BYTES + 1
                                                       if key == "trigger_table"
                                                       else MAX_IDENTIFIER_BYTES):
            add(key, "too-long", f"longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte names")
    if "description" in badge.present and badge.description is not None \
            and not isinstance(badge.description, str):
        add("description", "type", "must be a string")
    if "enabled" in badge.present and not isinstance(badge.enabled, bool):
        add("enabled", "type", f"{_quoted(badge.enabled)} must be true or false")
    if "on_error" in badge.present and badge.on_error not in ON_ERROR:
        add("on_error", "on-error", f"{_quoted(badge.on_error)} must be 'skip' or 'raise'")
    for key in ("name", "condition", "trigger_table", "user_field", "description"):
        value = getattr(badge, key)
        found = CONTROL_RE.search(value) if isinstance(value, str) else None
        if found:
            add(key, "control-character",
                f"holds control character U+{ord(found.group()):04X} at offset {found.start()};"
                " remove it")
    return problems


def check_definitions(bf: BadgeFile) -> list[Problem]:
    """Every file-level problem at once: keys, types, duplicates, and condition grammar."""
    from .condition import check_condition  # pglast import only when conditions are checked
    from .levels import check_series, series_codes

    problems = list(bf.setting_problems)
    problems += _check_name_setting("award_table", bf.award_table)
    problems += _check_name_setting("channel", bf.channel)
    seen: dict[str, int] = {}
    for index, badge in enumerate(bf.badges):
        found = _check_badge(index, badge)
        problems += found
        if isinstance(badge.code, str):
            if badge.code in seen:
                problems.append(Problem(index, badge.code, "code", "duplicate",
                                        f"same code as badge #{seen[badge.code]}; codes must be "
                                        "unique"))
            seen.setdefault(badge.code, index)
        for code in series_codes(badge):
            if code in seen:
                other = "another code of this entry" if seen[code] == index \
                    else f"the code of badge #{seen[code]}"
                problems.append(Problem(index, badge.valid_code, "levels", "duplicate",
                                        f"level code '{code}' is {other}; codes must be "
                                        "unique"))
            seen.setdefault(code, index)
        if badge.is_series:
            problems += check_series(index, badge, found)
        elif _is_text(badge.condition) and not any(
                p.key in ("trigger_condition", "condition") for p in found):
            for kind, message in check_condition(badge.condition, badge.operations).problems:
                problems.append(Problem(index, badge.valid_code, "condition", kind, message))
    return problems


def save_badge_file(bf: BadgeFile, path: str | Path | None = None) -> None:
    """Write atomically (temp file in the same folder, fsync, rename), keeping the file mode."""
    target = Path(path or bf.path or "badge.json")
    payload = bf.to_json().encode("utf-8")
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    bf.path = target
    bf.disk_digest = _digest(payload)
