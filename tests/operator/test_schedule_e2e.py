"""A LoadTest on a schedule, on the real control plane.

Here, with the operator on the host (seconds, no waiting for a minute): the CRD's CEL and schema
refuse bad schedule fields naming them, the operator refuses what CEL cannot check (a cron field
out of range, a time zone its tz database lacks); a scheduled LoadTest runs nothing when created,
says when it will, runs a user's new runId at once without counting it as scheduled, and once
suspended holds no finalizer, so it is deleted with no operator running.

The runs themselves take minutes of a one-minute schedule, which must not add minutes to the
cluster's serial tests: ``schedules_started`` makes two scheduled LoadTests as test_e2e.py's module
starts (its fixture ``schedules``), its other tests run meanwhile, one of them restarts the
operator mid-schedule (``Schedules.restart_mid_schedule``), and its last test checks them
(``Schedules.check``): ``nightly`` ran at least three times in a row, each due minute once — none
doubled, none lost across the restart — with its history at ``limit: 2``; ``blocked``, whose runs
wait for workers that never start, had a due time skipped under Forbid, said in an Event and in
``status.schedule.skipped``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gaggle_operator.schedule import schedule_of, stamp
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.conftest import ROOT, Target
from tests.support.operator_harness import (
    FINAL,
    Installed,
    Operator,
    loadtest,
    story,
    wait_for_phase,
)

pytestmark = pytest.mark.timeout(240)

HOST = "http://127.0.0.1:9"  # never loaded: these LoadTests are refused or wait for a due time


def until(what: str, check: Any, timeout: float, why: Any = "") -> Any:
    """``check()``'s first truthy answer, polled; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        assert time.monotonic() < deadline, f"{what}: {why() if callable(why) else why}"
        time.sleep(0.5)
    return answer


def events(kubectl: Kubectl, name: str, reason: str) -> list[str]:
    """The messages of the LoadTest's Events of that reason, oldest first."""
    found = kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")
    ordered = sorted(found["items"], key=lambda e: e["metadata"]["creationTimestamp"])
    return [e["message"] for e in ordered if e["reason"] == reason]


def test_bad_schedule_fields_are_refused_naming_them_by_the_api_server_or_the_operator(
    kubectl: Kubectl, operator: Operator
) -> None:
    refused_by_the_crd = {
        "every minute": ({"schedule": "every minute"}, "spec.schedule: use 5 fields"),
        "seconds": ({"schedule": "0 * * * * *"}, "spec.schedule: use 5 fields"),
        "in-the-cron": ({"schedule": "TZ=UTC 0 * * * *"}, "spec.schedule: use 5 fields"),
        "local": ({"schedule": "@daily", "timeZone": "Local"}, "spec.timeZone: use an IANA"),
        "allow": ({"schedule": "@daily", "concurrencyPolicy": "Allow"},
                  'spec.concurrencyPolicy: Unsupported value: "Allow": supported values: '
                  '"Forbid"'),
        "deadline": ({"schedule": "@daily", "startingDeadlineSeconds": 0},
                     "spec.startingDeadlineSeconds: Invalid value: 0"),
        "zone-alone": ({"timeZone": "UTC"}, "spec.schedule: timeZone, suspend, concurrencyPolicy"),
        "suspend-text": ({"schedule": "@daily", "suspend": "yes"}, "spec.suspend: Invalid value"),
    }  # fmt: skip
    for name, (fields, words) in refused_by_the_crd.items():
        refused = kubectl("apply", "-f", "-", input=loadtest(name, HOST, **fields), check=False)
        assert refused.returncode != 0, name
        assert words in refused.stderr, (name, refused.stderr)
    refused_by_the_operator = {
        "minute": ({"schedule": "61 * * * *"},
                   "spec.schedule: '61 * * * *' is not allowed; bad minute: minute 0-59"),
        "zone": ({"schedule": "@daily", "timeZone": "Mars/Olympus"},
                 "spec.timeZone: 'Mars/Olympus' is not allowed; use an IANA time zone name"),
    }  # fmt: skip
    for name, (fields, _) in refused_by_the_operator.items():
        kubectl.apply(loadtest(name, HOST, **fields))
    for name, (_, words) in refused_by_the_operator.items():
        status = wait_for_phase(kubectl, name, FINAL, operator)
        assert status["phase"] == "Failed", status
        validated = next(c for c in status["conditions"] if c["type"] == "Validated")
        assert (validated["status"], validated["reason"]) == ("False", "InvalidSpec")
        assert words in validated["message"], validated
        until(f"{name}'s Warning Event", lambda n=name: events(kubectl, n, "InvalidSpec"), 30)
    assert kubectl.json("get", "pods")["items"] == []


def test_a_scheduled_loadtest_waits_for_its_time_runs_a_new_run_id_at_once_and_suspends(
    kubectl: Kubectl, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """Due on 1 January at 03:00 in Tokyo: created, it runs nothing and says when it will (the
    exact instant, in UTC, also in `kubectl get lt`); a spec change is no run's, so it is taken;
    a new runId runs now, as the user's run, not the schedule's; suspended, `next` goes, and so
    does kopf's finalizer: deleted with no operator running, it goes at once."""
    target, url = bridge_target
    yearly = {"schedule": "0 3 1 1 *", "timeZone": "Asia/Tokyo"}
    kubectl.apply(loadtest("yearly", url, runTime="2s", **yearly))
    status = wait_for_phase(kubectl, "yearly", ("Scheduled", "Pending", *FINAL), operator)
    assert status["phase"] == "Scheduled", f"{status}\n{story(kubectl, operator)}"
    expected = schedule_of(yearly).next_after(datetime.now(UTC))  # type: ignore[union-attr]
    assert expected is not None
    due = stamp(expected)  # 18:00 UTC on 31 December
    assert due.endswith("-12-31T18:00:00Z"), due
    read = lambda: kubectl.json("get", "lt", "yearly").get("status", {})  # noqa: E731
    schedule = until("status.schedule.next", lambda: read().get("schedule", {}).get("next"), 30)
    assert schedule == due
    assert read()["schedule"]["runs"] == 0
    (said,) = until("the Scheduled Event", lambda: events(kubectl, "yearly", "Scheduled"), 30)
    assert said == f"runs on its schedule '0 3 1 1 *' (Asia/Tokyo): the first run is due at {due}"
    table = kubectl("get", "lt", "yearly").stdout.splitlines()
    assert table[0].split()[-2:] == ["NEXT", "AGE"], table
    assert due in table[1], table
    assert kubectl.json("get", "pods")["items"] == []  # nothing ran
    # not during a run: a spec change is taken (the next run's), not refused
    kubectl("patch", "lt", "yearly", "--type=merge", "-p", '{"spec":{"users":2}}')
    # the user's own rerun runs now, as theirs
    kubectl("patch", "lt", "yearly", "--type=merge", "-p", '{"spec":{"runId":"by-hand"}}')

    def by_hand() -> dict[str, Any] | None:
        status = read()
        return status if status.get("runId") == "by-hand" and status.get("phase") in FINAL else None

    ran = until("the user's run", by_hand, 120, lambda: story(kubectl, operator))
    assert ran["phase"] == "Succeeded", f"{ran}\n{story(kubectl, operator)}"
    served = target.counts()
    assert ran["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"] > 0
    assert ran["schedule"]["runs"] == 0
    assert ran["schedule"]["next"] == due
    assert "SpecChangeRefused" not in {c["type"] for c in ran["conditions"]}
    assert kubectl.json("get", "lt", "yearly")["metadata"].get("finalizers")  # the timer's
    kubectl("patch", "lt", "yearly", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    until("next cleared", lambda: "next" not in read().get("schedule", {}), 30, read)
    until("the Suspended Event", lambda: events(kubectl, "yearly", "Suspended"), 30)
    until("the finalizer released", lambda: not kubectl.json("get", "lt", "yearly")["metadata"]
          .get("finalizers"), 30, lambda: story(kubectl, operator))  # fmt: skip
    operator.stop()
    kubectl("delete", "lt", "yearly", "--wait=true", timeout=30)
    assert kubectl("get", "lt", "yearly", check=False).returncode != 0


# -- the schedules test_e2e.py's module runs beside its other tests ---------------------------

NIGHTLY = {"schedule": "* * * * *", "history": {"limit": 2}, "users": 2, "hatchRate": 20,
           "runTime": "2s", "workers": {"replicas": 1}}  # fmt: skip
# its workers ask for a node that does not exist: each run waits for them, past the next minute
NOWHERE = {"spec": {"nodeSelector": {"gaggle.dev/test-node": "nowhere"}}}
BLOCKED = {"schedule": "* * * * *", "workers": {"replicas": 1, "template": NOWHERE},
           "startPolicy": {"readyTimeoutSeconds": 75}}  # fmt: skip
RUN = re.compile(r"run (s-\d+) for the time due at (\S+);")
MISSED = re.compile(r"\((\d+) earlier due time")
SKIPPED = re.compile(r"the run due at (\S+) is skipped: (.*); the next")


@dataclass
class Schedules:
    kubectl: Kubectl
    target: Target
    restarted: datetime | None = None
    runs_before_restart: int = 0

    def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.kubectl.json("get", "lt", name).get("status", {})
        return found

    def restart_mid_schedule(self, operator: Installed) -> None:
        """After nightly's first run has ended and said so (not while an Event may be in kopf's
        queue), the operator's pod is deleted, as a crash or an eviction would, and its
        Deployment's next pod takes the schedule up from the status."""

        def quiet() -> int:
            status = self.status("nightly")
            runs = int(status.get("schedule", {}).get("runs", 0))
            said = len(events(self.kubectl, "nightly", "ScheduledRun"))
            return runs if runs and said == runs and status.get("phase") in FINAL else 0

        self.runs_before_restart = until("nightly's first run", quiet, 200,
                                         lambda: story(self.kubectl, operator))  # fmt: skip
        old = operator.pod()
        assert old is not None
        self.restarted = datetime.now(UTC)
        operator.restart()

        def replaced() -> bool:
            pod = operator.pod()
            if pod is None or pod["metadata"]["uid"] == old["metadata"]["uid"]:
                return False
            return any(c.get("ready") for c in pod["status"].get("containerStatuses", []))

        until("the operator's next pod", replaced, 120, operator.read)

    def check(self, operator: Installed) -> None:
        """Both suspended first (a run going on goes on), then read whole."""
        if self.restarted is None:  # the module's restart test was not selected: restart here
            self.restart_mid_schedule(operator)
        assert self.restarted is not None
        restarted = self.restarted

        def after_restart() -> bool:
            dues = [at(d) for _, d in runs_said(self.kubectl, "nightly")]
            return len(dues) >= 3 and any(d > restarted for d in dues)

        until("three runs, one after the restart", after_restart, 200,
              lambda: story(self.kubectl, operator))  # fmt: skip
        until("blocked's skip", lambda: self.status("blocked").get("schedule", {}).get("skipped"),
              200, lambda: story(self.kubectl, operator))  # fmt: skip
        for name in ("nightly", "blocked"):
            self.kubectl("patch", "lt", name, "--type=merge", "-p", '{"spec":{"suspend":true}}')
        # nightly's last run ends (its history is read); blocked's may wait on: once the operator
        # has seen the suspension (next cleared), no due time starts or skips any more
        wait_for_phase(self.kubectl, "nightly", FINAL, operator)
        until("blocked suspended", lambda: "next" not in self.status("blocked")["schedule"], 30)
        for name in ("nightly", "blocked"):  # kopf posts Events apart from the status: bounded
            until(f"{name}'s Events", lambda n=name: self.said_all(n), 30,
                  lambda: story(self.kubectl, operator))  # fmt: skip
        self.check_nightly(operator)
        self.check_blocked(operator)

    def said_all(self, name: str) -> bool:
        """Whether every run and skip the status counts has its Event (none more is checked
        after: an Event twice fails there)."""
        schedule = self.status(name)["schedule"]
        skipped = schedule.get("skipped", {}).get("count", 0)
        runs, skips = len(runs_said(self.kubectl, name)), len(skips_said(self.kubectl, name))
        return runs >= schedule["runs"] and skips >= skipped

    def check_nightly(self, operator: Installed) -> None:
        kubectl = self.kubectl
        status = self.status("nightly")
        said = runs_said(kubectl, "nightly")
        count = status["schedule"]["runs"]
        assert count >= 3
        assert count > self.runs_before_restart  # the schedule went on after the restart
        # every scheduled run said once, numbered in order: s-1, s-2, ..., none twice
        assert [run for run, _ in said] == [f"s-{n}" for n in range(1, count + 1)], said
        assert status["schedule"]["runId"] == f"s-{count}" == status["runId"]
        assert status["schedule"]["lastScheduleTime"] == said[-1][1]
        assert "next" not in status["schedule"]  # suspended
        skipped = skips_said(kubectl, "nightly")
        every_minute_once(said, skipped, missed_said(kubectl, "nightly"))
        assert status["schedule"].get("skipped", {}).get("count", 0) == len(skipped)
        assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
        # the history: the newest two runs, newest first; the older ones' ConfigMaps pruned
        rows = status.get("history", [])
        assert [row["runId"] for row in rows] == [f"s-{count}", f"s-{count - 1}"], rows
        kept = kubectl.json(
            "get", "cm", "-l", "gaggle.dev/loadtest=nightly,gaggle.dev/role=history"
        )
        names = sorted(item["metadata"]["name"] for item in kept["items"])
        assert names == sorted(f"nightly-run-s-{n}" for n in (count - 1, count)), names
        assert status["summary"]["requests"] > 0

    def check_blocked(self, operator: Installed) -> None:
        status = self.status("blocked")
        skipped = skips_said(self.kubectl, "blocked")
        assert skipped, story(self.kubectl, operator)
        assert status["schedule"]["skipped"]["count"] == len(skipped)
        assert status["schedule"]["skipped"]["lastTime"] == skipped[-1][0]
        for _, why in skipped:
            assert re.fullmatch(
                r"run s-\d+ \((Pending|WaitingForWorkers)\) is still going "
                r"\(concurrencyPolicy Forbid\)", why), why  # fmt: skip
        said = runs_said(self.kubectl, "blocked")
        assert [run for run, _ in said] == [
            f"s-{n}" for n in range(1, status["schedule"]["runs"] + 1)
        ]
        every_minute_once(said, skipped, missed_said(self.kubectl, "blocked"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def runs_said(kubectl: Kubectl, name: str) -> list[tuple[str, str]]:
    """(runId, due time) of each ScheduledRun Event, in the order of the runs."""
    found = [m.groups() for e in events(kubectl, name, "ScheduledRun") if (m := RUN.search(e))]
    return sorted(((run, due) for run, due in found), key=lambda r: int(r[0][2:]))


def skips_said(kubectl: Kubectl, name: str) -> list[tuple[str, str]]:
    found = [
        m.groups() for e in events(kubectl, name, "ScheduleSkipped") if (m := SKIPPED.search(e))
    ]
    return sorted((due, why) for due, why in found)


def missed_said(kubectl: Kubectl, name: str) -> dict[str, int]:
    """Due time of a run → the earlier due times it says passed while no operator looked."""
    said = {}
    for message in events(kubectl, name, "ScheduledRun"):
        run, missed = RUN.search(message), MISSED.search(message)
        if run and missed:
            said[run.group(2)] = int(missed.group(1))
    return said


def every_minute_once(
    runs: list[tuple[str, str]], skipped: list[tuple[str, str]], missed: dict[str, int]
) -> None:
    """From the first due minute to the last, each minute is exactly one of: a run's, a skip's,
    or one a later run says passed unrun while no operator looked (as a CronJob, only the
    latest of those runs). Nothing doubled, nothing lost unsaid."""
    dealt = [at(due) for _, due in runs] + [at(due) for due, _ in skipped]
    for due, count in missed.items():
        dealt += [at(due) - timedelta(minutes=k) for k in range(1, count + 1)]
    dealt.sort()
    minutes = int((dealt[-1] - dealt[0]).total_seconds() // 60) + 1
    assert dealt == [dealt[0] + timedelta(minutes=k) for k in range(minutes)], (runs, skipped)


@contextmanager
def schedules_started(cluster: Cluster, namespace: str, folder: Path) -> Iterator[Schedules]:
    """``nightly`` and ``blocked`` in ``namespace`` (watched by the module's operator), with a
    counting target of their own for as long as they run."""
    port_file = folder / "target.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.target", "--port-file", str(port_file),
         "--also-bind", cluster.host_ip],
        cwd=ROOT,
    )  # fmt: skip
    kubectl = Kubectl(cluster.kubeconfig, folder / "kube-cache", namespace)
    try:
        until("the target", lambda: port_file.exists() and port_file.read_text(), 15)
        port = json.loads(port_file.read_text())["port"]
        url = f"http://{cluster.host_ip}:{port}"
        for name, spec in (("nightly", NIGHTLY), ("blocked", BLOCKED)):
            kubectl.apply(loadtest(name, url, **spec))
        yield Schedules(kubectl, Target(port))
    finally:
        kubectl("delete", "loadtests", "--all", "--wait=false", check=False)
        process.terminate()
        process.wait(timeout=10)
