"""The plan's status decision without a database: every status and action from plain facts.

`decide` is the one place statuses are decided (the Install view, the Badges view, `plan`
and `install` all show its words); here each status is reached from the facts that lead
to it, and the facts that must not change it are shown not to."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from badge_console.core.health import FIX
from badge_console.core.install import Plan, PlanItem
from badge_console.core.plan_status import (CHANGES, BadgeFacts, PlanAction, PlanStatus,
                                            decide)

S, A = PlanStatus, PlanAction
# installed as the file says: bookkeeping row with the file's fingerprint, triggers there
UP_TO_DATE = BadgeFacts(recorded="fp1", wanted="fp1", has_objects=True, triggers_match=True)
BROKEN = f"broken: installed trigger no longer resolves: column gone; {FIX}"


def status(facts: BadgeFacts, **changes) -> tuple[PlanStatus, PlanAction, str]:
    d = decide(replace(facts, **changes))
    return d.status, d.action, d.detail


def test_installed_as_the_file_says_is_unchanged():
    assert status(UP_TO_DATE) == (S.INSTALLED, A.UNCHANGED, "")


def test_a_changed_definition_is_outdated():
    assert status(UP_TO_DATE, wanted="fp2") == (S.OUTDATED, A.REPLACE, "definition changed")


def test_never_installed_is_missing_and_created():
    assert status(BadgeFacts(wanted="fp1")) == (S.MISSING, A.CREATE, "not installed")


def test_a_trigger_dropped_by_hand_is_missing_and_replaced():
    assert status(UP_TO_DATE, triggers_match=False) == (
        S.MISSING, A.REPLACE, "trigger was dropped outside badge-console")


def test_objects_without_bookkeeping_are_replaced():
    assert status(UP_TO_DATE, recorded=None) == (
        S.MISSING, A.REPLACE, "replaces trigger(s) left without bookkeeping")


def test_disable_trigger_is_not_installed():
    """ALTER TABLE ... DISABLE TRIGGER: the trigger is there but never fires."""
    assert status(UP_TO_DATE, switched_off=("badge_console_star__insert",)) == (
        S.DISABLED_IN_DB, A.REPLACE, "trigger badge_console_star__insert disabled in the "
        "database; install re-creates it enabled")
    # disabled and then dropped: what counts is that it is gone
    assert status(UP_TO_DATE, triggers_match=False, switched_off=("t",))[0] is S.MISSING


def test_no_longer_in_the_file_is_orphaned_and_dropped():
    gone = BadgeFacts(in_file=False, recorded="fp1", has_objects=True)
    assert status(gone) == (S.ORPHANED, A.DROP, "installed but no longer in badge.json")
    assert status(gone, recorded=None) == status(gone)  # objects alone are enough
    assert status(gone, broken="broken: x") == (
        S.ORPHANED, A.DROP, "installed but no longer in badge.json and broken: x")


def test_a_django_pg_badges_trigger_is_replaced_by_its_badge():
    assert status(BadgeFacts(wanted="fp1", legacy=("badge_Star", "badge_star"))) == (
        S.LEGACY, A.REPLACE, "replaces django-pg-badges trigger(s) badge_Star, badge_star")


def test_an_unclaimed_django_pg_badges_trigger_is_kept():
    assert status(BadgeFacts(in_file=False, stray_table="public.dummy_sketch")) == (
        S.LEGACY, A.KEEP, "django-pg-badges trigger on public.dummy_sketch matches no badge "
        "in badge.json; left in place")


def test_installed_beside_a_legacy_trigger_is_replaced():
    assert status(UP_TO_DATE, legacy=("badge_star",))[:2] == (S.MISSING, A.REPLACE)


def test_disabled_in_the_file_drops_what_exists_else_skips():
    assert status(UP_TO_DATE, enabled=False) == (S.DISABLED, A.DROP, "disabled in badge.json")
    assert status(BadgeFacts(enabled=False, has_objects=True))[:2] == (S.DISABLED, A.DROP)
    assert status(BadgeFacts(enabled=False, legacy=("badge_star",)))[:2] == (S.DISABLED,
                                                                            A.DROP)
    assert status(BadgeFacts(enabled=False)) == (S.DISABLED, A.SKIP, "disabled in badge.json")
    # disabled wins over invalid and broken: install drops it even when it no longer resolves
    assert status(UP_TO_DATE, enabled=False, problem="bad", broken=BROKEN)[:2] == (
        S.DISABLED, A.DROP)


def test_an_invalid_definition_is_refused():
    assert status(BadgeFacts(problem="badge 0 (star): condition: syntax error")) == (
        S.INVALID, A.NONE, "badge 0 (star): condition: syntax error")
    assert status(BadgeFacts(problem="")) == (S.INVALID, A.NONE, "")


def test_installed_and_no_longer_resolving_is_broken():
    # the file still resolves: install replaces the trigger with the file's
    assert status(UP_TO_DATE, broken=BROKEN) == (
        S.BROKEN, A.REPLACE, "broken: installed trigger no longer resolves: column gone; "
        "install replaces it")
    assert status(UP_TO_DATE, wanted="fp2", broken=BROKEN)[0] is S.BROKEN  # over outdated
    # the file does not resolve either: refused, with the full fix
    assert status(UP_TO_DATE, problem="unknown column", broken=BROKEN) == (
        S.BROKEN, A.NONE, BROKEN)


def test_not_installed_is_never_broken():
    assert status(BadgeFacts(wanted="fp1", broken=BROKEN))[:2] == (S.MISSING, A.CREATE)


def test_paused_and_auto_paused_follow_the_badge_whatever_its_status():
    last = {"code": "star", "auto": True, "at": "2026-01-01T00:00:00", "sqlstate": "22012",
            "message": "division by zero"}
    for facts in (UP_TO_DATE, BadgeFacts(wanted="fp1"), BadgeFacts(problem="bad"),
                  BadgeFacts(in_file=False, recorded="fp1")):
        d = decide(facts)
        assert (d.paused, d.auto_paused) == (False, None)
        d = decide(replace(facts, paused=True))
        assert (d.paused, d.auto_paused) == (True, None)
        d = decide(replace(facts, paused=True, auto_paused=last))
        assert (d.paused, d.auto_paused) == (True, last)
    assert decide(UP_TO_DATE).status is S.INSTALLED  # a pause is no status of its own


def test_a_legacy_trigger_has_no_kill_switch():
    for facts in (BadgeFacts(wanted="fp1", legacy=("badge_star",)),
                  BadgeFacts(in_file=False, stray_table="public.t")):
        d = decide(replace(facts, paused=True, auto_paused={"message": "x"}))
        assert (d.status, d.paused, d.auto_paused) == (S.LEGACY, False, None)


def test_time_based_is_carried_whatever_the_status():
    for facts in (UP_TO_DATE, BadgeFacts(wanted="fp1"), BadgeFacts(enabled=False)):
        assert decide(replace(facts, time_based=True)).time_based
        assert not decide(facts).time_based


def test_every_status_and_action_is_reached():
    cases = [UP_TO_DATE, BadgeFacts(wanted="x"), BadgeFacts(enabled=False),
             BadgeFacts(problem=""), BadgeFacts(in_file=False, has_objects=True),
             BadgeFacts(in_file=False), BadgeFacts(legacy=("badge_a",)),
             BadgeFacts(recorded="a", wanted="b", has_objects=True),
             BadgeFacts(recorded="a", wanted="a", triggers_match=True, switched_off=("t",)),
             BadgeFacts(recorded="a", broken="x"), replace(UP_TO_DATE, enabled=False)]
    decisions = [decide(f) for f in cases]
    assert {d.status for d in decisions} == set(PlanStatus)
    assert {d.action for d in decisions} == set(PlanAction)


@pytest.mark.parametrize("word", list(PlanStatus) + list(PlanAction))
def test_statuses_and_actions_are_their_words(word):
    """JSON, f-strings and comparisons with the words keep working as before the enums."""
    assert json.dumps(word) == f'"{word.value}"'
    assert f"{word}" == str(word) == word.value == word
    assert {word.value: 1}[word] == 1


def test_plan_counts_and_changes():
    items = [PlanItem(c, c, s, a) for c, s, a in (
        ("a", S.MISSING, A.CREATE), ("b", S.OUTDATED, A.REPLACE), ("c", S.MISSING, A.CREATE),
        ("d", S.ORPHANED, A.DROP), ("e", S.INSTALLED, A.UNCHANGED), ("f", S.INVALID, A.NONE),
        ("g", S.DISABLED, A.SKIP))]
    plan = Plan("badges_badge", "badge_awarded", items, [])
    counts = plan.counts()
    assert [counts[a] for a in CHANGES] == [2, 1, 1]
    assert (counts[A.UNCHANGED], counts[A.NONE], counts[A.KEEP]) == (1, 1, 0)
    assert [i.code for i in plan.changes] == ["a", "b", "c", "d"]
    doc = json.loads(json.dumps(plan.as_dict()))
    assert [(b["status"], b["action"]) for b in doc["badges"]][:2] == [
        ("missing", "create"), ("outdated", "replace")]
