"""``-R junit.xml``: the run as JUnit XML, the format CI test reporters read (GitHub checks,
GitLab's ``artifacts:reports:junit``, Jenkins), from the same data as the other reports.

One ``<testsuite name="gaggle">``: a test case per ``--threshold`` rule (``gaggle.thresholds``; a
rule on the baseline: ``gaggle.regression``), failed with the observed value and the limit, and
one for the run itself (``gaggle.run``), so a run without rules still makes a valid file. The run
case fails when the run did not end as it was meant to (``run_problem``). Written with
``xml.etree`` (it escapes); characters XML 1.0 forbids are dropped from user data.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

SUITE = "gaggle"
RUN_CLASS, RULE_CLASS, REGRESSION_CLASS = "gaggle.run", "gaggle.thresholds", "gaggle.regression"
TOP_ERRORS = 10
ERROR_CHARS = 300

# what XML 1.0 allows: tab, newline, carriage return and the rest from U+0020, minus surrogates
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# a rule's text as metrics.thresholds prints it: METRIC[(REQUEST)] OP VALUE (no parens in REQUEST)
_RULE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9.]*\s*(?:\([^()]*\))?\s*(<=|>=|<|>)\s*(.+?)\s*$")
_BASELINE = re.compile(r"\bbaseline\b")
# How a run ends when something went wrong, in the words the engine and the operator stop it
# with (run.session's signals, distributed.servicer's goodbye, the operator's abortOnFail).
_ABORTED = re.compile(r"^caught \S+ again$")
_WORKER_LEFT = re.compile(r"^worker \d+: ")
_ABORT_ON_FAIL = "(abortOnFail)"


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can hold: forbidden characters (most controls) dropped."""
    return _FORBIDDEN.sub("", str(value))


def run_problem(run: Mapping[str, Any]) -> str | None:
    """Why the run itself failed, or None: workers were lost, it was aborted (a second
    signal), a worker left the gaggle mid-run, or the operator stopped it on a failed rule.
    A run stopped on purpose (a signal, the control API) or by its plan is no failure."""
    stopped, lost = str(run.get("stopped_by", "")), int(run.get("workers_lost", 0))
    if lost:
        return f"{lost} worker{'s' * (lost != 1)} lost mid-run (stopped by: {stopped})"
    if _ABORTED.match(stopped):
        return f"aborted: {stopped}"
    if _WORKER_LEFT.match(stopped):
        return f"a worker left mid-run: {stopped}"
    if stopped.endswith(_ABORT_ON_FAIL):
        return f"stopped early: {stopped}"
    return None


def threshold_limit(rule: Mapping[str, Any]) -> str:
    """A rule's limit as text, ``< 300``; a baseline rule's with the value it resolved to,
    ``< baseline + 10% (= 330)``, or ``(no baseline value)``."""
    match = _RULE.match(str(rule["expression"]))
    if match is None:
        return ""
    op, value = match.groups()
    if not _BASELINE.search(value):
        return f"{op} {value}"
    limit = rule.get("limit")
    resolved = "no baseline value" if limit is None else f"= {limit:.6g}"
    return f"{op} {value} ({resolved})"


def _observed(rule: Mapping[str, Any]) -> str:
    value = rule["observed"]
    return "never measured (its request was never made)" if value is None else f"{value:.6g}"


def _rule_case(suite: ET.Element, rule: Mapping[str, Any]) -> bool:
    """The rule's test case; True when it failed."""
    expression = str(rule["expression"])
    match = _RULE.match(expression)
    regression = match is not None and _BASELINE.search(match[2]) is not None
    case = ET.SubElement(
        suite,
        "testcase",
        name=xml_text(expression),
        classname=REGRESSION_CLASS if regression else RULE_CLASS,
        time="0",
    )
    if rule["passed"]:
        return False
    message = f"observed {_observed(rule)}, limit {threshold_limit(rule)}"
    failure = ET.SubElement(case, "failure", message=xml_text(message), type="threshold")
    details = [f"rule: {expression}", f"observed: {_observed(rule)}"]
    if rule.get("baseline") is not None:
        details.append(f"baseline: {rule['baseline']:.6g}")
    failure.text = xml_text("\n".join(details))
    return True


def _run_summary(data: Mapping[str, Any]) -> str:
    run, total = data["run"], data["requests_total"]
    share = 100 * total["fails"] / total["count"] if total["count"] else 0.0
    lines = [
        f"host: {run['host']} ({run['mode']}), {run['users']} users",
        f"stopped by: {run['stopped_by']} after {run['duration']:.3f} s",
        f"requests: {total['count']:,}, failed: {total['fails']:,} ({share:.3g} %), "
        f"{total['rps']:,.1f} req/s",
        f"p50 / p95 / p99: {total['p50_ms']} / {total['p95_ms']} / {total['p99_ms']} ms",
        f"verdict: {data['verdict'] or 'no thresholds'}",
        *(f"warning: {warning}" for warning in run.get("warnings", [])),
    ]
    found = data["errors"]
    if found["distinct"]:
        lines.append(f"errors: {found['distinct']:,} distinct, {found['occurrences']:,} in all")
        for error in found["shown"][:TOP_ERRORS]:
            text = str(error["error"])
            cut = text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
            lines.append(f"  {error['count']:,} × {cut}")
    return "\n".join(lines)


def render_junit(data: Mapping[str, Any]) -> str:
    """The report as a JUnit XML document."""
    run = data["run"]
    seconds = f"{float(run['duration']):.3f}"
    root = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(
        root, "testsuite", name=SUITE, timestamp=xml_text(str(run["started"])[:19])
    )
    properties = ET.SubElement(suite, "properties")
    for key in ("host", "mode", "users", "stopped_by", "gaggle_version"):
        ET.SubElement(properties, "property", name=key, value=xml_text(run[key]))
    ET.SubElement(properties, "property", name="verdict", value=str(data["verdict"]))
    case = ET.SubElement(suite, "testcase", name="run", classname=RUN_CLASS, time=seconds)
    problem = run_problem(run)
    if problem is not None:
        failure = ET.SubElement(case, "failure", message=xml_text(problem), type="run")
        failure.text = xml_text(problem)
    ET.SubElement(case, "system-out").text = xml_text(_run_summary(data))
    failures = int(problem is not None)
    for rule in data["thresholds"]:
        failures += _rule_case(suite, rule)
    tests = str(1 + len(data["thresholds"]))
    for element in (root, suite):
        element.set("tests", tests)
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("time", seconds)
    suite.set("skipped", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
