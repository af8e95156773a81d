"""``gaggle-operator manage``: the manager pod's process.

It runs the gaggle manager exactly as ``gaggle run --manager`` does and writes what it sees into
its LoadTest's status: ``live`` figures every few seconds, then ``summary``, ``thresholds`` and
``verdict`` (the full JSON summary goes to the summary ConfigMap, and so does the report, gzipped,
when it fits: a pod's files go with it). Why the manager and not the
operator: it holds the merged numbers, and it writes the final ones before it exits, whether or not
the operator is running at that moment. Its ServiceAccount may patch only this LoadTest's status
and its summary ConfigMap. A status write that fails is logged and retried; it never stops the run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config

from gaggle.cli import build_parser, read_run_command
from gaggle.distributed.manager import Manager
from gaggle.errors import ConfigError, TestDefinitionError
from gaggle.metrics import Threshold
from gaggle.options import RoleKind
from gaggle.run import (
    EXIT_ABORTED,
    EXIT_THRESHOLDS,
    Aborted,
    RunResult,
    fail,
    run_on_best_loop,
    setup_logging,
)
from gaggle_operator.children import GROUP, PLURAL, VERSION, names
from gaggle_operator.comparison import REPORT_KEY, read_report, status_comparison, unjudged
from gaggle_operator.status import live, summary, verdicts

log = logging.getLogger("gaggle")
LIVE_INTERVAL = 3.0
SUMMARY_LIMIT = 900_000  # bytes: a ConfigMap holds at most 1 MiB
CONFIG_MAP_LIMIT = 1_000_000  # what the summary and the report together may take of that MiB


class StatusWriter:
    """Patches one LoadTest's status (merge patch) and its summary ConfigMap."""

    def __init__(self, loadtest: str, namespace: str) -> None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped library
            api = client.ApiClient()
        else:  # by hand, outside a cluster
            api = config.new_client_from_config()  # type: ignore[no-untyped-call]
        self.custom, self.core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.loadtest, self.namespace = loadtest, namespace

    def status(self, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, self.loadtest, {"status": body}
        )

    def summary_file(
        self, text: str, binary: dict[str, str | None], data: dict[str, str | None] | None = None
    ) -> None:
        body = {"data": {"summary.json": text, **(data or {})}, "binaryData": binary}
        self.core.patch_namespaced_config_map(names(self.loadtest)["summary"], self.namespace, body)


def kept_report(path: str, loadtest: str, room: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The report file, gzipped, as the summary ConfigMap's binaryData, and what status says of
    it (where it is, or why it is not there). ``room``: bytes left in the ConfigMap."""
    key = Path(path).name + ".gz"
    try:
        packed = gzip.compress(Path(path).read_bytes(), mtime=0)
    except OSError as error:
        return {}, {"kept": False, "why": f"the manager could not read {path}: {error.strerror}"}
    encoded = base64.b64encode(packed).decode()
    if len(encoded) > room:
        why = (
            f"{path} is {len(packed)} bytes gzipped ({len(encoded)} in base64), more than the "
            f"{room} left in ConfigMap {names(loadtest)['summary']} (a ConfigMap holds 1 MiB)"
        )
        return {}, {"kept": False, "why": why}
    where = {"configMap": names(loadtest)["summary"], "key": key, "bytes": len(packed)}
    return {key: encoded}, {"kept": True, **where}


async def _write(what: str, call: Any, *args: Any, attempts: int = 1) -> bool:
    for attempt in range(attempts):
        try:
            await asyncio.to_thread(call, *args)
            return True
        except Exception as error:  # any API trouble: log it, keep the run going
            if getattr(error, "status", None) == 404:  # the LoadTest was deleted: nobody reads it
                log.warning("could not write the %s: the LoadTest is gone", what)
                return False
            log.warning("could not write the %s (attempt %d): %s", what, attempt + 1, error)
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    return False


async def _report_live(
    manager: Manager, writer: StatusWriter, abort_rules: list[Threshold]
) -> None:
    source = manager.source()
    last_count, last_time = 0, time.monotonic()
    while True:
        await asyncio.sleep(LIVE_INTERVAL)
        # the run's totals and their aggregate, kept as deltas arrive: no pass over every name
        metrics, total = source.counted(), manager.run_totals.requests()
        count, now = total.count, time.monotonic()
        rps = (count - last_count) / (now - last_time)
        last_count, last_time = count, now
        arrival_rate = source.arrival_rate() if manager.open_model else None
        now_live = live(metrics, total, source.users(), rps, arrival_rate)
        body = {"live": now_live, "workers": _workers(manager)}
        await _write("live status", writer.status, body)
        failed = manager.failed_rules(abort_rules)
        if failed:
            manager.stop(f"threshold failed: {failed[0].expression} (abortOnFail)")


def _workers(manager: Manager) -> dict[str, Any]:
    connected, lost = manager.worker_counts()
    text = f"{connected}/{manager.expected_workers}"
    return {"connected": connected, "lost": lost, "text": text}


def _final(result: RunResult, manager: Manager) -> dict[str, Any]:
    return {"summary": summary(result), **verdicts(result), "workers": _workers(manager)}


def _summary_file(result: RunResult, final: dict[str, Any], run: str = "") -> str:
    """The JSON summary, naming its run: the operator copies it into the run's history only
    when it is this run's (a rerun's manager that never wrote leaves its predecessor's)."""
    requests = [
        {"method": method, "name": name, **stats.to_dict()}
        for (method, name), stats in result.metrics.requests.items()
    ]
    final = {"runId": run, **final}
    document = {**final, "requests": requests}
    text = json.dumps(document, separators=(",", ":"))
    while len(text.encode()) > SUMMARY_LIMIT and requests:
        requests = requests[: len(requests) // 2]
        document = {**final, "requests": requests, "truncated": True}
        text = json.dumps(document, separators=(",", ":"))
    return text


async def manage(
    manager: Manager,
    writer: StatusWriter,
    abort_rules: list[Threshold],
    report: str | None,
    run: str = "",
    json_report: str | None = None,
    unjudged_rules: Sequence[str] = (),
) -> RunResult:
    """Run the manager, writing live status; stop it when one of ``abort_rules`` fails. Then the
    final status, and the summary ConfigMap with the report file (``report``) when it fits, and
    the JSON report (``json_report``) for a later run's baseline (comparison.py), first."""
    reporter = asyncio.ensure_future(_report_live(manager, writer, abort_rules))
    try:
        result = await manager.run()
    finally:
        reporter.cancel()
    if unjudged_rules:  # no baseline run yet: not judged (comparison.py)
        result.verdicts = [*result.verdicts, *unjudged(list(unjudged_rules), result)]
    final = _final(result, manager)
    found = read_report(json_report) if json_report else None
    if found is not None and isinstance(found.get("baseline"), dict):
        final["comparison"] = status_comparison(found["baseline"])
    text = _summary_file(result, final, run)
    kept_json = json.dumps(found, separators=(",", ":")) if found is not None else None
    if kept_json is not None and len(text) + len(kept_json) > CONFIG_MAP_LIMIT:
        log.warning("the JSON report (%d bytes) does not fit the summary ConfigMap", len(kept_json))
        kept_json = None
    data: dict[str, str | None] = {REPORT_KEY: kept_json}  # null: not the previous run's
    room = CONFIG_MAP_LIMIT - len(text) - len(kept_json or "")
    binary: dict[str, str | None] = {}
    if report is not None:
        kept, final["report"] = kept_report(report, writer.loadtest, room)
        # null: a report that does not fit removes the previous run's (a merge patch)
        binary = {Path(report).name + ".gz": None, **kept}
    await _write("final status", writer.status, final, attempts=6)
    await _write("summary ConfigMap", writer.summary_file, text, binary, data, attempts=3)
    return result


def _with_report_file(gaggle_args: list[str]) -> tuple[list[str], str, bool]:
    """The run's flags with a report file unless they name an HTML or JSON one (then the first
    is kept; -R is repeatable); the path; and whether it is ours to remove (in $TMPDIR: the
    pod's work dir)."""
    given = getattr(build_parser().parse_args(gaggle_args), "report_file", None) or []
    kept = [path for path in given if Path(path).suffix.lower() in (".html", ".htm", ".json")]
    if kept:
        return gaggle_args, str(kept[0]), False
    path = os.path.join(tempfile.mkdtemp(prefix="gaggle-report-"), "report.html")
    return [*gaggle_args, "--report-file", path], path, True


def _with_json_report(gaggle_args: list[str]) -> tuple[list[str], str, bool]:
    """The run's flags with a JSON report (a later run's baseline) unless they name one; its
    path; and whether it is ours to remove."""
    given = getattr(build_parser().parse_args(gaggle_args), "report_file", None) or []
    named = [path for path in given if Path(path).suffix.lower() == ".json"]
    if named:
        return gaggle_args, str(named[0]), False
    path = os.path.join(tempfile.mkdtemp(prefix="gaggle-json-"), REPORT_KEY)
    return [*gaggle_args, "--report-file", path], path, True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gaggle-operator manage",
        description="Run a LoadTest's gaggle manager and write its status (in the manager pod).",
    )
    parser.add_argument("--loadtest", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--abort-on-fail", action="store_true")
    parser.add_argument("--run", default="", help="the run's id (spec.runId), for its summary")
    parser.add_argument(
        "--unjudged",
        action="append",
        default=[],
        metavar="RULE",
        help="a regression rule with no baseline run to judge it: said passed, unjudged",
    )
    parser.add_argument("gaggle", nargs=argparse.REMAINDER, help="-- run FILE --manager ...")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    gaggle_args = args.gaggle[1:] if args.gaggle[:1] == ["--"] else args.gaggle
    try:
        gaggle_args, report, ours = _with_report_file(gaggle_args)
        gaggle_args, json_report, json_ours = _with_json_report(gaggle_args)
        command = read_run_command(build_parser().parse_args(gaggle_args))
        if command.role.kind is not RoleKind.MANAGER:
            raise ConfigError("--manager", False, "the manager pod runs `run FILE --manager ...`")
        plan = command.plan()
    except (ConfigError, TestDefinitionError) as error:
        fail("gaggle-operator manage", str(error))
    setup_logging(plan.config)
    try:  # reads --baseline (the regression rules' limits): a bad file stops here, exit 2
        manager = Manager(plan, command.role, *command.rules())
    except ConfigError as error:
        if ours:
            shutil.rmtree(Path(report).parent, ignore_errors=True)
        fail("gaggle-operator manage", str(error))
    writer = StatusWriter(args.loadtest, args.namespace)
    abort_rules = plan.config.threshold_rules if args.abort_on_fail else []
    try:
        running = manage(manager, writer, abort_rules, report, args.run, json_report, args.unjudged)
        result = run_on_best_loop(running)
    except Aborted:
        return EXIT_ABORTED
    finally:
        if ours:
            shutil.rmtree(Path(report).parent, ignore_errors=True)
        if json_ours:
            shutil.rmtree(Path(json_report).parent, ignore_errors=True)
    return 0 if result.passed else EXIT_THRESHOLDS
