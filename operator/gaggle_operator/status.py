"""The figures a LoadTest's status carries: ``live`` while it runs, then ``summary``,
``thresholds`` and ``verdict`` — bounded in size (a status is not a report: the busiest requests,
an ``(other names)`` row summing the rest, and the top errors; the full JSON summary goes to the
summary ConfigMap).
"""

from __future__ import annotations

from typing import Any

from gaggle.metrics import OTHER_NAMES, Metrics, Stats, busiest, ms, overall, verdict_rows
from gaggle.run import RunResult

TOP_REQUESTS = 10
TOP_ERRORS = 5
MAX_ERROR_CHARS = 300


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def latency(stats: Stats) -> dict[str, float]:
    return {
        "min": ms(stats.min),
        "avg": ms(stats.mean_us),
        "p50": ms(stats.percentile_us(0.5)),
        "p95": ms(stats.percentile_us(0.95)),
        "p99": ms(stats.percentile_us(0.99)),
        "max": ms(stats.max_us),
    }


def live(
    metrics: Metrics, total: Stats, users: int, rps: float, arrival_rate: float | None = None
) -> dict[str, Any]:
    """What `kubectl get lt` shows while the run goes: cumulative counts, the recent rate (an
    open model: the arrival rate asked now, and the arrivals dropped), and the requests in flight
    that the stop timeout abandoned. ``total``: every request row of ``metrics`` merged."""
    schedule = (
        {"arrivalRate": round(arrival_rate, 3), "dropped": metrics.dropped}
        if arrival_rate is not None
        else {}
    )
    return {
        **schedule,
        "users": users,
        "requests": total.count,
        "failures": total.fail_count,
        "rps": round(rps, 1),
        "failPercent": round(100 * _ratio(total.fail_count, total.count), 2),
        "p95Ms": ms(total.percentile_us(0.95)),
        "abandoned": metrics.abandoned_requests,
    }


def summary(result: RunResult) -> dict[str, Any]:
    """The measured phase's numbers (the same ones the manager's tables print)."""
    metrics, seconds = result.metrics, result.duration
    total = metrics.aggregated_requests()
    view = busiest(metrics.requests, TOP_REQUESTS)
    ranked = sorted(view.shown, key=lambda item: -item[1].count)
    errors = sorted(metrics.errors.items(), key=lambda item: -item[1])[:TOP_ERRORS]
    return {
        "requests": total.count,
        "failures": total.fail_count,
        "failRatio": _ratio(total.fail_count, total.count),
        "rps": round(total.count / seconds, 3) if seconds > 0 else 0.0,
        "durationSeconds": round(seconds, 3),
        "stoppedBy": result.stopped_by,
        # cancelled by the stop timeout while still running: neither served nor failed
        "abandoned": {"requests": metrics.abandoned_requests, "tasks": metrics.abandoned_tasks},
        "latencyMs": latency(total),
        "topRequests": [
            {
                "name": f"{method} {name}",
                "requests": stats.count,
                "failures": stats.fail_count,
                "p95Ms": ms(stats.percentile_us(0.95)),
            }
            for (method, name), stats in ranked
        ]
        + _other_names(view.other, view.folded),
        **(
            {
                "arrivals": {
                    "scheduled": metrics.scheduled,
                    "started": metrics.lag.timed_count,
                    "dropped": metrics.dropped,
                    "lagP99Ms": ms(metrics.lag.percentile_us(0.99)),
                }
            }
            if metrics.scheduled
            else {}
        ),
        "distinctErrors": len(metrics.errors),
        "topErrors": [
            {"error": error[:MAX_ERROR_CHARS], "count": count} for error, count in errors
        ],
    }


def _other_names(other: Stats | None, folded: int) -> list[dict[str, Any]]:
    """The row that sums the names past the busiest (none when every name is shown)."""
    if other is None:
        return []
    return [
        {
            "name": OTHER_NAMES,
            "names": folded,
            "requests": other.count,
            "failures": other.fail_count,
            "p95Ms": ms(other.percentile_us(0.95)),
        }
    ]


def verdicts(result: RunResult) -> dict[str, Any]:
    """``thresholds`` and ``verdict`` (only when the spec has thresholds)."""
    if not result.verdicts:
        return {}
    return {"thresholds": verdict_rows(result.verdicts), "verdict": overall(result.verdicts)}
