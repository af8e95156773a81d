"""A LoadTest's schedule: cron as Kubernetes' CronJob takes it, in a time zone, and what one look
at the clock decides — start a run, skip a due time, or wait.

Pure functions over the spec and ``status.schedule``: every decision is tested without a cluster,
and a restarted operator decides the same from the same status (nothing is kept in memory). The
status remembers the due times already dealt with (``lastScheduleTime`` for a run started,
``skipped.lastTime`` for one skipped, ``since`` before either): only due times after the latest of
them count, so a due time is started at most once however often the timer looks. Due times that
passed while no operator looked are not all run: the most recent one is, once (as CronJob does),
unless ``startingDeadlineSeconds`` says it is too late.

The cron expressions are cronsim's (Debian cron's rules, also across DST: a time in a skipped hour
runs when the clock jumps past it, a time in a repeated hour runs once), behind a gate that admits
what a CronJob's schedule admits: 5 fields or an @-descriptor, no seconds, L, W or #, and no
``TZ=`` (the time zone is ``spec.timeZone``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from gaggle.options import SECONDS_MAX
from gaggle_operator.spec_values import SpecError, get_field, positive_field

# A schedule's spec fields: the timer reads them live, so a change never touches a running run.
FIELDS = frozenset(
    {"schedule", "timeZone", "suspend", "concurrencyPolicy", "startingDeadlineSeconds"}
)
SCHEDULED = "Scheduled"  # the phase of a scheduled LoadTest before its first run
RUN_PREFIX = "s-"  # scheduled runs are s-1, s-2, ...: never a user's runId by accident
# Forbid only: two runs of one LoadTest at once would share its children (one manager Service,
# one summary) and load the target twice, measuring neither; Replace would cut a run short and
# keep a truncated summary to compare with.
CONCURRENCY_POLICIES = ("Forbid",)
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
CRON_ALLOWED = (
    "use 5 fields (minute hour day-of-month month day-of-week, e.g. '0 3 * * *' or "
    "'*/15 * * * 1-5') or @hourly, @daily, @weekly, @monthly or @yearly, as a CronJob's schedule"
)
RANGES = (
    "minute 0-59, hour 0-23, day-of-month 1-31 (one some month has), month 1-12 or JAN-DEC, "
    "day-of-week 0-7 or SUN-SAT"
)
ZONE_ALLOWED = "use an IANA time zone name such as Europe/Berlin or UTC, as a CronJob's timeZone"
DEADLINE_WHY = "a year: a LoadTest's longest run time"
MISSED_COUNTED = 100  # due times counted one by one when the operator was away; past it, "more"


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as the API server writes times."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_stamp(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:  # not ours: as if absent
        return None


def _cron(text: str) -> str:
    """The 5 fields cronsim evaluates, from a CronJob schedule; SpecError when it is not one."""
    words = text.split()
    if not words:
        raise SpecError("schedule", text, CRON_ALLOWED)
    if words[0].upper().startswith(("TZ=", "CRON_TZ=")):
        raise SpecError("schedule", text, "give the time zone in spec.timeZone")
    if words[0].startswith("@"):
        if len(words) != 1 or words[0].lower() not in DESCRIPTORS:
            raise SpecError("schedule", text, CRON_ALLOWED)
        return DESCRIPTORS[words[0].lower()]
    if len(words) != 5:
        raise SpecError("schedule", text, f"{CRON_ALLOWED}: {len(words)} field(s) given")
    fields = []
    for name, word in zip(FIELD_NAMES, words, strict=True):
        plain = NAMES.sub("", word.upper()) if name in ("month", "day-of-week") else word
        if not re.fullmatch(r"[0-9*?,/-]*", plain):
            allowed = (
                f"its {name} field {word!r} is not a CronJob's: use numbers, names, *, ?, ',', "
                "'-' and '/' (no L, W or #)"
            )
            raise SpecError("schedule", text, allowed)
        fields.append(word.replace("?", "*"))  # robfig/cron's ? (CronJob's parser) is *
    return " ".join(fields)


def _zone(name: str) -> ZoneInfo:
    if name == "Local" or not name:  # CronJob refuses Local: it depends on the controller's host
        raise SpecError("timeZone", name, ZONE_ALLOWED)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError("timeZone", name, ZONE_ALLOWED) from None


@dataclass(frozen=True, slots=True)
class Schedule:
    """``spec.schedule`` and its companions, checked."""

    expression: str  # as given
    cron: str  # the 5 fields cronsim evaluates
    zone_name: str = "UTC"
    suspend: bool = False
    concurrency_policy: str = "Forbid"
    starting_deadline: int | None = None  # seconds; None: a missed due time is run however late

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    def times(self, after: datetime) -> Iterator[datetime]:
        """The due times strictly after ``after``, in UTC, in order."""
        for due in CronSim(self.cron, after.astimezone(self.zone)):
            yield due.astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime | None:
        return next(self.times(moment), None)

    def latest(self, after: datetime, now: datetime) -> tuple[datetime | None, int]:
        """The latest due time in ``(after, now]`` and how many there were (counted up to
        ``MISSED_COUNTED + 1``: an operator away for a month does not walk every minute)."""
        latest, count = None, 0
        for due in self.times(after):
            if due > now:
                return latest, count
            latest, count = due, count + 1
            if count > MISSED_COUNTED:
                break
        # Far behind: walk on from a little before the newest matching time (a DST shift moves
        # a due time by an hour or two at most).
        newest = self._newest_before(now)
        start = max(latest or after, newest - timedelta(hours=3)) if newest else latest or after
        for due in self.times(start):
            if due > now:
                break
            latest = due
        return latest, count

    def _newest_before(self, now: datetime) -> datetime | None:
        """The newest matching time at or before ``now`` (cronsim's reverse walk: a start for the
        forward walk, whose DST rules are the ones that count)."""
        try:
            found = next(CronSim(self.cron, (now + timedelta(seconds=1)).astimezone(self.zone),
                                 reverse=True))  # fmt: skip
        except StopIteration:
            return None
        return found.astimezone(UTC)


def scheduled(spec: dict[str, Any]) -> bool:
    """Whether the spec asks for a schedule (checked or not)."""
    return spec.get("schedule") not in (None, "")


def schedule_of(spec: dict[str, Any]) -> Schedule | None:
    """The spec's schedule, checked field by field (None without ``spec.schedule``)."""
    text = get_field(spec, "schedule", str)
    if text is None:
        given = sorted(FIELDS & {key for key, value in spec.items() if value is not None})
        if given:
            raise SpecError(given[0], spec[given[0]], "use it with spec.schedule")
        return None
    cron = _cron(text)
    zone_name = get_field(spec, "timeZone", str, "UTC")
    zone = _zone(zone_name)
    try:
        first = next(CronSim(cron, datetime(2000, 1, 1, tzinfo=zone)), None)
    except CronSimError as error:
        raise SpecError("schedule", text, f"{str(error).lower()}: {RANGES}") from None
    if first is None:
        raise SpecError("schedule", text, "give one that is due some day (this one never is)")
    policy = get_field(spec, "concurrencyPolicy", str, "Forbid")
    if policy not in CONCURRENCY_POLICIES:
        why = "two runs of one LoadTest at once would share its children and both load the target"
        raise SpecError("concurrencyPolicy", policy, f"use Forbid ({why})")
    deadline = positive_field(spec, "startingDeadlineSeconds", None, SECONDS_MAX, DEADLINE_WHY)
    return Schedule(
        expression=text,
        cron=cron,
        zone_name=zone_name,
        suspend=get_field(spec, "suspend", bool, False),
        concurrency_policy=policy,
        starting_deadline=deadline,
    )


@dataclass(frozen=True, slots=True)
class State:
    """What ``status.schedule`` remembers: all a restarted operator needs."""

    runs: int = 0  # scheduled runs started
    last_schedule: datetime | None = None  # the due time of the latest run started
    run_id: str | None = None  # that run's id, while it is the LoadTest's latest run
    skipped: int = 0
    last_skipped: datetime | None = None
    reason: str | None = None  # why the latest skip
    since: datetime | None = None  # due times count from here when none was dealt with yet
    next: datetime | None = None  # as last written

    @classmethod
    def of(cls, status: dict[str, Any]) -> State:
        """From ``status.schedule`` (anything unreadable: as if absent)."""
        raw = status.get("schedule")
        raw = raw if isinstance(raw, dict) else {}
        found = raw.get("skipped")
        skipped: dict[str, Any] = found if isinstance(found, dict) else {}
        runs, count = raw.get("runs"), skipped.get("count")
        run_id = raw.get("runId")
        return cls(
            runs=runs if isinstance(runs, int) else 0,
            last_schedule=parse_stamp(raw.get("lastScheduleTime")),
            run_id=run_id if isinstance(run_id, str) else None,
            skipped=count if isinstance(count, int) else 0,
            last_skipped=parse_stamp(skipped.get("lastTime")),
            reason=skipped.get("reason") if isinstance(skipped.get("reason"), str) else None,
            since=parse_stamp(raw.get("since")),
            next=parse_stamp(raw.get("next")),
        )

    def base(self) -> datetime | None:
        """The latest moment dealt with: only due times after it are due."""
        dealt = [t for t in (self.last_schedule, self.last_skipped, self.since) if t is not None]
        return max(dealt, default=None)

    def status(self) -> dict[str, Any]:
        """As ``status.schedule`` (a whole object: what is absent is removed by a merge patch)."""
        skipped = (
            {"count": self.skipped, "lastTime": _text(self.last_skipped), "reason": self.reason}
            if self.skipped
            else None
        )
        return {
            "next": _text(self.next),
            "lastScheduleTime": _text(self.last_schedule),
            "runs": self.runs,
            "runId": self.run_id,
            "skipped": skipped,
            "since": _text(self.since),
        }


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else stamp(moment)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one look decided: ``run`` (start ``state.run_id`` for ``due``), ``skip`` (``due``
    passes unrun, ``why``) or ``wait``; ``state`` is the status to write in the same patch."""

    action: str
    state: State
    due: datetime | None = None
    missed: int = 0  # earlier due times that passed while no operator looked, not run
    why: str = ""


def decide(
    schedule: Schedule, state: State, now: datetime, running: str | None, first: datetime
) -> Decision:
    """One look at the clock. ``running``: the run going on (e.g. ``run s-3 (Running)``), None
    when the LoadTest is idle; ``first``: where due times count from when the status has dealt
    with none yet (the LoadTest's creation, or the moment the schedule was first seen)."""
    since = state.since if state.base() is not None else first
    state = replace(state, since=since)
    if schedule.suspend:
        return Decision("wait", replace(state, next=None))
    base = state.base()
    assert base is not None  # since is set
    due, count = schedule.latest(base, now)
    following = schedule.next_after(now)
    if due is None:
        return Decision("wait", replace(state, next=following))
    missed = count - 1
    late = (now - due).total_seconds()
    why = ""
    if schedule.starting_deadline is not None and late > schedule.starting_deadline:
        why = (
            f"{late:.0f} s late, past startingDeadlineSeconds ({schedule.starting_deadline}): "
            "no operator looked in time"
        )
    elif running is not None:
        why = f"{running} is still going (concurrencyPolicy Forbid)"
    if why:
        skipped = replace(
            state, skipped=state.skipped + 1, last_skipped=due, reason=why, next=following
        )
        return Decision("skip", skipped, due, missed, why)
    runs = state.runs + 1
    started = replace(
        state, runs=runs, last_schedule=due, run_id=f"{RUN_PREFIX}{runs}", next=following
    )
    return Decision("run", started, due, missed)
