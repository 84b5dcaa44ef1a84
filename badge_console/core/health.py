"""Health of what is installed: each installed badge re-checked against today's schema.

The application keeps migrating after install (a column dropped, a table renamed, a
user id widened to bigint). An installed trigger is judged by the definition it was
installed from (badge_console.installed.definition), not by the file: the file may
already be fixed while the trigger on the table still fails on every write.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from .definitions import Badge, BadgeFile
from .errors import Problem
from .installed import (InstalledBadge, LiveBadge, last_migration, live_badges,
                        read_installed, read_setting)
from .resolve import Resolution, resolve

FIX = "fix the badge, or set enabled false (or remove it), then install"
# Found in the file as a whole, not in one badge's definition against the schema.
NOT_THE_DEFINITION = ("shared-award",)


def _broken(code: str, index: int | None, reason: str) -> Problem:
    return Problem(index, code, None, "broken",
                   f"broken: installed trigger no longer resolves: {reason}; {FIX}")


def installed_health(conn: psycopg.Connection, bf: BadgeFile, res: Resolution | None,
                     installed: dict[str, InstalledBadge] | None = None) -> dict[str, Problem]:
    """Installed badges that no longer resolve, by code, each with the reason and the fix.

    A badge installed from exactly the file's definition, on the same award table, shares
    the file's resolution (`res`); only the others are resolved again, as installed."""
    installed = read_installed(conn) if installed is None else installed
    if not installed:
        return {}
    award = read_setting(conn, "award_table") or (
        res.award.display if res else bf.settings.award_table)
    in_file = {b.valid_code: (i, b) for i, b in bf.each_badge() if b.valid_code}
    index = {code: i for code, (i, _) in in_file.items()}
    file_problems: dict[int, Problem] = {}
    for p in res.problems if res else []:
        if p.index is not None and p.kind not in NOT_THE_DEFINITION:
            file_problems.setdefault(p.index, p)
    found: dict[str, Problem] = {}
    again: list[Badge] = []
    for code, inst in installed.items():
        i = index.get(code)
        same = res is not None and i is not None and award == res.award.display and \
            in_file[code][1].definition() == Badge.from_dict(inst.definition).definition()
        if same and in_file[code][1].is_enabled:
            if i in file_problems:
                found[code] = _broken(code, i, file_problems[i].message)
        else:
            again.append(Badge.from_dict(inst.definition).copy(enabled=True))
    if again:
        checked = resolve(conn, BadgeFile(badges=again, award_table=award))
        for p in checked.problems:
            code = again[p.index].code if p.index is not None else None
            if code is not None and code not in found:
                found[code] = _broken(code, index.get(code), p.message)
    return _with_migrations(conn, found) if found else found


def _with_migrations(conn: psycopg.Connection, found: dict[str, Problem]) -> dict[str, Problem]:
    """Each broken badge's reason with the last recorded migration of its trigger's table."""
    live = live_badges(conn)
    for code, problem in found.items():
        seen = last_migration(conn, {(s, t) for s, t, _ in live.get(code, LiveBadge()).triggers})
        if seen:
            found[code] = replace(problem, message=problem.message.replace(
                "; " + FIX, f" (after `{' '.join(seen[1].split())[:200]}` at {seen[0]}); {FIX}"))
    return found


def broken_triggers(conn: psycopg.Connection) -> dict[tuple[str, str, str], str]:
    """(schema, table, trigger) of every installed trigger whose badge is broken, with why:
    for views that show triggers without a badges file at hand (the Tables tree)."""
    broken = installed_health(conn, BadgeFile(badges=[]), None)
    live = live_badges(conn) if broken else {}
    return {trigger: problem.message for code, problem in broken.items()
            if code in live for trigger in live[code].triggers}
