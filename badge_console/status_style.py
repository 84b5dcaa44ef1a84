"""Colours (rich style names) of plan statuses and actions, for both front ends: the CLI's
`plan`, the Install plan and the Badges list show a status in the same colour."""

from __future__ import annotations

from .core.plan_status import PlanAction, PlanStatus

PLAN_STATUS_STYLE: dict[str, str] = {
    PlanStatus.INSTALLED: "green", PlanStatus.OUTDATED: "yellow", PlanStatus.MISSING: "yellow",
    PlanStatus.DISABLED_IN_DB: "yellow", PlanStatus.ORPHANED: "magenta",
    PlanStatus.DISABLED: "dim", PlanStatus.INVALID: "bold red", PlanStatus.LEGACY: "yellow",
    PlanStatus.BROKEN: "bold red"}
# The Badges list also says what it knows without a plan; there an invalid badge is
# plain red, as the problem that follows it on the same line.
BADGE_STATUS_STYLE: dict[str, str] = PLAN_STATUS_STYLE | {
    "valid": "green", "unchecked": "dim", PlanStatus.INVALID: "red"}
ACTION_STYLE: dict[str, str] = {
    PlanAction.CREATE: "green", PlanAction.REPLACE: "yellow", PlanAction.DROP: "red",
    PlanAction.UNCHANGED: "dim", PlanAction.SKIP: "dim", PlanAction.KEEP: "dim",
    PlanAction.NONE: "red"}
