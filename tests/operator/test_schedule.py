"""A LoadTest's schedule without a cluster: cron as a CronJob takes it (also across DST in a time
zone), every bad field refused by name, and what one look at the clock decides — run, skip under
Forbid, wait while suspended, and after a restart the latest missed due time once, never twice."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from gaggle_operator import handlers, scheduling
from gaggle_operator.schedule import (
    FIELDS,
    Schedule,
    State,
    decide,
    schedule_of,
    stamp,
)
from gaggle_operator.spec import SPEC_FIELDS, SpecError, parse_spec
from tests.operator.test_crd import CRD
from tests.operator.test_spec import spec

FINAL = ("Succeeded", "Failed", "Aborted")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def every_minute(**fields: Any) -> Schedule:
    made = schedule_of({"schedule": "* * * * *", **fields})
    assert made is not None
    return made


def due_times(schedule: Schedule, after: str, count: int) -> list[str]:
    times = schedule.times(at(after))
    return [stamp(next(times)) for _ in range(count)]


# -- cron, time zones, DST --------------------------------------------------------------------


def test_a_daily_time_in_berlin_follows_its_clock_across_both_dst_changes() -> None:
    """02:30 Europe/Berlin: on 29 March 2026 the clock jumps 02:00 → 03:00, so the run is at
    03:00 local (Debian cron's rule); on 25 October 02:00–03:00 comes twice, and it runs once."""
    nightly = schedule_of({"schedule": "30 2 * * *", "timeZone": "Europe/Berlin"})
    assert nightly is not None
    assert due_times(nightly, "2026-03-28T12:00:00Z", 3) == [
        "2026-03-29T01:00:00Z",  # 03:00 CEST: 02:30 never came that night
        "2026-03-30T00:30:00Z",  # 02:30 CEST from then on
        "2026-03-31T00:30:00Z",
    ]
    assert due_times(nightly, "2026-10-24T12:00:00Z", 3) == [
        "2026-10-25T00:30:00Z",  # 02:30 CEST, the first of the two 02:30s
        "2026-10-26T01:30:00Z",  # 02:30 CET from then on
        "2026-10-27T01:30:00Z",
    ]


def test_hourly_runs_every_real_hour_also_the_repeated_one() -> None:
    hourly = schedule_of({"schedule": "@hourly", "timeZone": "Europe/Berlin"})
    assert hourly is not None
    assert hourly.cron == "0 * * * *"
    assert due_times(hourly, "2026-10-24T23:30:00Z", 4) == [
        "2026-10-25T00:00:00Z",  # 02:00 CEST
        "2026-10-25T01:00:00Z",  # 02:00 CET: the hour came twice, so did the run
        "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z",
    ]


def test_a_time_zone_moves_the_due_time_and_utc_is_the_default() -> None:
    utc = schedule_of({"schedule": "0 9 * * MON-FRI"})
    tokyo = schedule_of({"schedule": "0 9 * * MON-FRI", "timeZone": "Asia/Tokyo"})
    assert utc is not None
    assert tokyo is not None
    assert utc.zone_name == "UTC"
    # Friday 2 January 2026 at noon UTC: Tokyo's next 09:00 on a weekday is Monday's
    assert due_times(utc, "2026-01-02T12:00:00Z", 1) == ["2026-01-05T09:00:00Z"]
    assert due_times(tokyo, "2026-01-02T12:00:00Z", 1) == ["2026-01-05T00:00:00Z"]


@pytest.mark.parametrize(
    ("descriptor", "cron"),
    [("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
     ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
     ("@HOURLY", "0 * * * *")],
)  # fmt: skip
def test_cronjobs_descriptors_are_taken(descriptor: str, cron: str) -> None:
    made = schedule_of({"schedule": descriptor})
    assert made is not None
    assert made.cron == cron


def test_robfigs_question_mark_is_a_star() -> None:
    made = schedule_of({"schedule": "0 12 ? * MON"})
    assert made is not None
    assert made.cron == "0 12 * * MON"


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"schedule": "61 * * * *"}, "schedule", "bad minute: minute 0-59"),
        ({"schedule": "* * * *"}, "schedule", "4 field(s) given"),
        ({"schedule": "0 0 * * * *"}, "schedule", "6 field(s) given"),  # no seconds field
        ({"schedule": ""}, "schedule", "use 5 fields"),
        ({"schedule": "@every 1h"}, "schedule", "@hourly, @daily"),
        ({"schedule": "@reboot"}, "schedule", "@hourly, @daily"),
        ({"schedule": "0 0 L * *"}, "schedule", "day-of-month field 'L'"),
        ({"schedule": "0 0 * * MON#2"}, "schedule", "no L, W or #"),
        ({"schedule": "TZ=UTC 0 0 * * *"}, "schedule", "spec.timeZone"),
        ({"schedule": "0 0 30 2 *"}, "schedule", "bad day-of-month"),
        ({"schedule": 5}, "schedule", "use a string"),
        ({"schedule": "* * * * *", "timeZone": "Mars/Olympus"}, "timeZone", "IANA"),
        ({"schedule": "* * * * *", "timeZone": "Local"}, "timeZone", "IANA"),
        ({"schedule": "* * * * *", "timeZone": "../../etc/passwd"}, "timeZone", "IANA"),
        ({"schedule": "* * * * *", "concurrencyPolicy": "Allow"}, "concurrencyPolicy", "Forbid"),
        ({"schedule": "* * * * *", "concurrencyPolicy": "Replace"}, "concurrencyPolicy", "Forbid"),
        ({"schedule": "* * * * *", "suspend": "yes"}, "suspend", "true or false"),
        ({"schedule": "* * * * *", "startingDeadlineSeconds": 0}, "startingDeadlineSeconds", "≥ 1"),
        ({"timeZone": "UTC"}, "timeZone", "use it with spec.schedule"),
        ({"suspend": True}, "suspend", "use it with spec.schedule"),
    ],
)
def test_a_bad_schedule_field_is_refused_naming_it_its_value_and_what_is_allowed(
    fields: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(spec(**fields))
    assert refused.value.path == path
    assert str(refused.value).startswith(f"spec.{path}: {fields[path]!r} is not allowed; ")
    assert words in str(refused.value)


def test_the_spec_reads_every_schedule_field() -> None:
    parsed = parse_spec(spec(schedule="*/15 9-17 * * MON-FRI", timeZone="America/New_York",
                             suspend=True, concurrencyPolicy="Forbid",
                             startingDeadlineSeconds=120))  # fmt: skip
    assert parsed.schedule == Schedule(
        "*/15 9-17 * * MON-FRI", "*/15 9-17 * * MON-FRI", "America/New_York", True, "Forbid", 120
    )
    assert parse_spec(spec()).schedule is None
    assert FIELDS <= SPEC_FIELDS


# -- decisions ----------------------------------------------------------------------------------

CREATED = at("2026-05-01T12:00:30Z")


def test_created_at_12_00_30_it_first_runs_at_12_01_not_at_once() -> None:
    schedule, fresh = every_minute(), State()
    waiting = decide(schedule, fresh, at("2026-05-01T12:00:40Z"), None, CREATED)
    assert waiting.action == "wait"
    assert waiting.state.since == CREATED
    assert stamp(waiting.state.next) == "2026-05-01T12:01:00Z"  # type: ignore[arg-type]
    due = decide(schedule, waiting.state, at("2026-05-01T12:01:01Z"), None, CREATED)
    assert (due.action, stamp(due.due)) == ("run", "2026-05-01T12:01:00Z")  # type: ignore[arg-type]
    assert (due.state.runs, due.state.run_id) == (1, "s-1")
    assert due.state.last_schedule == due.due
    assert stamp(due.state.next) == "2026-05-01T12:02:00Z"  # type: ignore[arg-type]


def test_a_due_time_is_started_once_however_often_the_timer_looks() -> None:
    """The timer fires twice, or reads a status that lags: the same status decides the same run
    (same id, same due time: the same patch again), and once that status is written nothing
    more is due until the next minute."""
    schedule = every_minute()
    before = decide(schedule, State(), at("2026-05-01T12:00:40Z"), None, CREATED).state
    look = at("2026-05-01T12:01:02Z")
    first, again = (decide(schedule, before, look, None, CREATED) for _ in range(2))
    assert first == again
    written = State.of({"schedule": first.state.status()})
    for seconds in (0, 1, 30, 57):  # 12:01:02 to 12:01:59
        later = decide(schedule, written, look + timedelta(seconds=seconds), None, CREATED)
        assert later.action == "wait", seconds


def test_a_due_time_during_a_run_is_skipped_and_counted() -> None:
    schedule = every_minute()
    state = State(runs=3, last_schedule=at("2026-05-01T12:03:00Z"), run_id="s-3",
                  since=CREATED)  # fmt: skip
    skipped = decide(schedule, state, at("2026-05-01T12:04:01Z"), "run s-3 (Running)", CREATED)
    assert skipped.action == "skip"
    assert skipped.why == "run s-3 (Running) is still going (concurrencyPolicy Forbid)"
    assert (skipped.state.runs, skipped.state.run_id) == (3, "s-3")  # no new run
    assert skipped.state.skipped == 1
    assert stamp(skipped.state.last_skipped) == "2026-05-01T12:04:00Z"  # type: ignore[arg-type]
    assert skipped.state.status()["skipped"] == {
        "count": 1, "lastTime": "2026-05-01T12:04:00Z", "reason": skipped.why}  # fmt: skip
    # the skipped time is dealt with: when the run ends, the next run is the next minute's
    after = decide(schedule, skipped.state, at("2026-05-01T12:04:30Z"), None, CREATED)
    assert after.action == "wait"
    following = decide(schedule, skipped.state, at("2026-05-01T12:05:00Z"), None, CREATED)
    assert (following.action, following.state.run_id) == ("run", "s-4")


def test_suspended_nothing_runs_and_next_is_cleared() -> None:
    schedule = every_minute(suspend=True)
    state = State(runs=1, last_schedule=at("2026-05-01T12:01:00Z"), since=CREATED,
                  next=at("2026-05-01T12:02:00Z"))  # fmt: skip
    decision = decide(schedule, state, at("2026-05-01T12:30:00Z"), None, CREATED)
    assert decision.action == "wait"
    assert decision.state.next is None
    assert decision.state.status()["next"] is None


def test_after_a_restart_the_latest_missed_due_time_runs_once_never_two() -> None:
    """No operator looked from 12:01:00 to 12:07:20: six due times passed. As a CronJob's, only
    the latest (12:07) runs, once; then nothing more until 12:08."""
    schedule = every_minute()
    state = State(runs=1, last_schedule=at("2026-05-01T12:01:00Z"), run_id="s-1", since=CREATED)
    back = decide(schedule, state, at("2026-05-01T12:07:20Z"), None, CREATED)
    assert (back.action, stamp(back.due)) == ("run", "2026-05-01T12:07:00Z")  # type: ignore[arg-type]
    assert (back.missed, back.state.runs, back.state.run_id) == (5, 2, "s-2")
    # the operator restarts again right after writing it: the status says 12:07 was started
    again = State.of({"schedule": back.state.status()})
    assert decide(schedule, again, at("2026-05-01T12:07:40Z"), None, CREATED).action == "wait"


def test_an_operator_away_for_a_month_runs_the_latest_due_time_without_walking_every_minute() -> (
    None
):
    schedule = every_minute()
    state = State(runs=1, last_schedule=at("2026-04-01T00:00:00Z"))
    back = decide(schedule, state, at("2026-05-01T12:07:20Z"), None, CREATED)
    assert (back.action, stamp(back.due)) == ("run", "2026-05-01T12:07:00Z")  # type: ignore[arg-type]
    assert back.missed == 100  # counted up to 100, then "at least 100"


def test_past_its_starting_deadline_a_missed_due_time_is_skipped_not_run_late() -> None:
    schedule = every_minute(startingDeadlineSeconds=15)
    state = State(runs=1, last_schedule=at("2026-05-01T12:01:00Z"), since=CREATED)
    late = decide(schedule, state, at("2026-05-01T12:07:20Z"), None, CREATED)
    assert late.action == "skip"
    assert late.why.startswith("20 s late, past startingDeadlineSeconds (15)")
    in_time = decide(schedule, state, at("2026-05-01T12:07:10Z"), None, CREATED)
    assert in_time.action == "run"


def test_a_schedule_added_to_a_loadtest_that_ran_counts_from_when_it_is_seen() -> None:
    """``first`` is the moment the operator first sees the schedule: nothing is caught up."""
    seen = at("2026-05-01T15:30:10Z")
    decision = decide(every_minute(), State(), seen, None, seen)
    assert decision.action == "wait"
    assert decision.state.since == seen


def test_the_status_written_is_read_back_the_same() -> None:
    state = State(runs=4, last_schedule=at("2026-05-01T12:04:00Z"), run_id="s-4", skipped=2,
                  last_skipped=at("2026-05-01T12:03:00Z"), reason="run s-3 is still going",
                  since=CREATED, next=at("2026-05-01T12:05:00Z"))  # fmt: skip
    assert State.of({"schedule": state.status()}) == state
    assert State.of({"schedule": "garbage"}) == State()
    assert state.base() == at("2026-05-01T12:04:00Z")


# -- the timer's glue: what it reads from a LoadTest -------------------------------------------


def body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": spec, "status": status or {},
            "metadata": {"name": "nightly", "namespace": "n", "uid": "u",
                         "creationTimestamp": "2026-05-01T12:00:30Z"}}  # fmt: skip


def test_a_suspended_or_bad_schedule_needs_no_timer_and_so_no_finalizer() -> None:
    assert scheduling.ticking(body({"schedule": "* * * * *"}))
    assert not scheduling.ticking(body({"schedule": "* * * * *", "suspend": True}))
    assert not scheduling.ticking(body({"schedule": "61 * * * *"}))
    assert not scheduling.ticking(body({}))


def test_a_scheduled_run_launches_under_its_id_and_a_users_run_id_takes_over() -> None:
    on_schedule = body({"schedule": "* * * * *", "runId": "7"},
                       {"schedule": {"runId": "s-2", "runs": 2}})  # fmt: skip
    assert scheduling.run_id(on_schedule) == "s-2"
    assert scheduling.manual_run(on_schedule) == {"schedule": {"runId": None}}
    assert scheduling.run_id(body({"schedule": "* * * * *"})) is None
    assert scheduling.manual_run(body({})) == {}


def test_only_the_schedules_fields_changed_is_no_change_to_a_run() -> None:
    base = {"schedule": "* * * * *", "users": 3}
    assert scheduling.only_schedule(base, {**base, "suspend": True})
    assert scheduling.only_schedule(base, {**base, "schedule": "@hourly", "timeZone": "UTC"})
    assert not scheduling.only_schedule(base, {**base, "users": 4, "suspend": True})
    assert not scheduling.only_schedule(base, base)


@pytest.mark.parametrize(
    ("status", "running"),
    [({}, None), ({"phase": "Scheduled"}, None), ({"phase": "Succeeded"}, None),
     ({"phase": "Failed"}, None), ({"phase": "Running", "runId": "s-3"}, "run s-3 (Running)"),
     ({"phase": "WaitingForWorkers", "runId": "s-3"}, "run s-3 (WaitingForWorkers)"),
     ({"phase": "Pending", "schedule": {"runId": "s-4"}}, "run s-4 (Pending)")],
)  # fmt: skip
def test_what_counts_as_a_run_going_on(status: dict[str, Any], running: str | None) -> None:
    assert scheduling._running(body({"schedule": "* * * * *"}, status), FINAL) == running


def test_the_crds_cel_rule_admits_every_schedule_the_operator_takes() -> None:
    """CEL checks the shape (RE2, the same syntax here), the operator the rest: a schedule the
    operator runs must never be refused at `kubectl apply`, and what CEL refuses the operator
    refuses too."""
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    fields = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    (rule,) = fields["schedule"]["x-kubernetes-validations"]
    pattern = re.fullmatch(r"self\.matches\('(.*)'\)", rule["rule"]).group(1)  # type: ignore[union-attr]
    taken = ["* * * * *", "0 3 * * *", "*/15 9-17 * * MON-FRI", "0 12 ? * mon",
             "5,35 */2 1-15 JAN,JUL *", "@hourly", "@daily", "@weekly", "@monthly", "@yearly",
             "@annually", "@midnight", "  0 0 * * 0  ", "0 0 * * 7"]  # fmt: skip
    for text in taken:
        assert schedule_of({"schedule": text}) is not None
        assert re.search(pattern, text), text
    shapes = ["every minute", "0 0 * * * *", "TZ=UTC 0 0 * * *", "@every 1h", "@reboot",
              "* * * *", "0 0 * * MON#2", ""]  # fmt: skip
    for text in shapes:  # refused at apply, and by the operator had it got there
        assert not re.search(pattern, text), text
        assert _refused(text), text
    for text in ("61 * * * *", "0 0 30 2 *", "0 0 L * *"):  # the operator's alone
        assert re.search(pattern, text), text
        assert _refused(text), text


def _refused(text: str) -> bool:
    try:
        schedule_of({"schedule": text})
    except SpecError:
        return True
    return False


def test_the_crds_time_zone_rule_admits_every_iana_zone() -> None:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    fields = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    (rule,) = fields["timeZone"]["x-kubernetes-validations"]
    pattern = re.search(r"self\.matches\('(.*)'\)", rule["rule"]).group(1)  # type: ignore[union-attr]
    zones = zoneinfo.available_timezones()
    assert len(zones) > 300
    assert [zone for zone in sorted(zones) if not re.search(pattern, zone)] == []
    assert max(map(len, zones)) <= fields["timeZone"]["maxLength"]


@pytest.mark.parametrize(
    ("spec_fields", "status", "watched"),
    [({"schedule": "@daily"}, {"phase": "Scheduled"}, True),
     ({"schedule": "@daily", "suspend": True}, {"phase": "Scheduled"}, False),
     ({"schedule": "@daily"}, {"phase": "Succeeded", "cleanedUp": True}, True),
     ({"schedule": "@daily", "suspend": True}, {"phase": "Succeeded", "cleanedUp": True}, False),
     ({"schedule": "@daily", "suspend": True}, {"phase": "Running"}, True),
     ({}, {"phase": "Succeeded", "cleanedUp": True}, False)],
    ids=["waiting", "suspended-before-a-run", "between-runs", "suspended-after-runs",
         "suspended-mid-run", "unscheduled-done"],
)  # fmt: skip
def test_the_timer_and_so_kopfs_finalizer_stay_while_a_schedule_may_start_a_run(
    spec_fields: dict[str, Any], status: dict[str, Any], watched: bool
) -> None:
    """A suspended one, not running, is let go whatever its cleanup policy (the policy applies
    after a run, and before the first there was none)."""
    cleanup = {"cleanup": {"policy": "Always", "ttlSecondsAfterFinished": 60}}
    assert handlers.watched(body({**spec(**spec_fields), **cleanup}, status)) is watched
