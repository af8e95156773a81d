"""Goose (Rust), a peer of Gaggle in throughput.py: built once per machine, run, its counts read.

``benchmarks/goose/v0_19`` and ``benchmarks/goose/v0_10`` are two tiny Cargo projects of ours, the
same load test as throughput.py's Gaggle run (``GET /``, no wait), on Goose 0.19 and on Goose 0.10
(the release Gaggle's design descends from). Their Cargo.lock pins every crate, and the build is
``cargo build --release --locked`` from crates.io into ``~/.cache/gaggle/goose/<version>/``
(``GAGGLE_CACHE`` moves the root, as for tests/cluster/binaries.py), never into the checkout: a
second run, and a fresh clone on the same machine, build nothing. A lock makes two concurrent
callers build once. No cargo → a message, and throughput.py runs without Goose.

What a run reports is Goose's own (``--no-reset-metrics``, so the ramp-up counts too, as in
Gaggle's and Locust's runs):

- **0.19**: its JSON ``--report-file``: the Aggregated row's requests and failures, and its
  timeline from the start of launching users to ``Finished`` (every user stopped and its metrics
  final; the window Gaggle's ``RunResult.duration`` covers); launching alone is its hatch time.
- **0.10**: no machine-readable report, and durations in whole seconds only, so our main.rs writes
  the ``GooseMetrics`` ``execute`` returns (the source of its tables) as JSON, with the time from
  its first request's start to ``execute`` returning. (0.10's parent counts the users' requests
  in batches once a second, tenths of a second behind: ending the window at the last response
  would leave that work out.)

Both build every user's state (an HTTP client each) before launching any: ~2 s for 50 users on
0.10, ~19 s for 10,000 on 0.19. That is outside the windows above, and throughput.py prints it.

    python benchmarks/goose.py    # build what is missing, print each binary's path
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("GAGGLE_CACHE", Path.home() / ".cache" / "gaggle"))
BINARY = "goose-bench"  # both projects' [package] name
BUILD_TIMEOUT = 3600.0  # a cold build is minutes on 2 cores; bounded all the same
WAIT_VARIABLE = "GOOSE_BENCH_WAIT_MS"  # 0.19's main.rs: a constant pause after each request
OUT_VARIABLE = "GOOSE_BENCH_OUT"  # 0.10's main.rs writes its totals there


@dataclass(frozen=True)
class Project:
    """One of our Cargo projects: where it lives and which Goose its Cargo.lock pins."""

    folder: Path

    @property
    def version(self) -> str:
        """Goose's exact version, read off Cargo.lock (what the build really compiles)."""
        lock = (self.folder / "Cargo.lock").read_text()
        found = re.search(r'\[\[package\]\]\nname = "goose"\nversion = "([^"]+)"', lock)
        if found is None:
            raise BuildError(f"{self.folder}/Cargo.lock pins no goose package")
        return found.group(1)

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def root(self) -> Path:
        return CACHE / "goose" / self.version

    @property
    def binary(self) -> Path:
        return self.root / "target" / "release" / BINARY

    def sources(self) -> list[Path]:
        return [self.folder / "Cargo.toml", self.folder / "Cargo.lock", self.folder / "src"]


PROJECTS = (Project(HERE / "goose" / "v0_19"), Project(HERE / "goose" / "v0_10"))


class BuildError(RuntimeError):
    """A build failed: the message names the project and carries cargo's last lines."""


# --- building it -----------------------------------------------------------------------------
def cargo() -> str | None:
    found = shutil.which("cargo")
    fallback = Path.home() / ".cargo" / "bin" / "cargo"  # rustup's place, often not on PATH
    return found or (str(fallback) if fallback.is_file() else None)


def fresh(project: Project) -> bool:
    """The cached binary exists and is newer than every file it is built from."""
    if not project.binary.is_file():
        return False
    built = project.binary.stat().st_mtime
    newest = max(newest_mtime(path) for path in project.sources())
    return built > newest


def newest_mtime(path: Path) -> float:
    if path.is_dir():
        return max((newest_mtime(child) for child in path.iterdir()), default=path.stat().st_mtime)
    return path.stat().st_mtime


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(project: Project) -> Path:
    """The project's release binary, built first when missing or older than its sources."""
    if fresh(project):
        return project.binary
    program = cargo()
    if program is None:
        raise BuildError(
            "cargo not found (neither on PATH nor ~/.cargo/bin): Goose is built from crates.io "
            "with Rust's cargo; install Rust (rustup) to measure Goose too"
        )
    with locked(project.root / ".build.lock"):
        if not fresh(project):  # again: another process may have built meanwhile
            build(project, program)
    return project.binary


def build(project: Project, program: str) -> None:
    """``cargo build --release --locked`` into the cache; one line of progress every 30 s."""
    log = project.root / "build.log"
    say(
        f"building Goose {project.version} from crates.io with {program} "
        "(minutes, once per machine)"
    )
    started = time.monotonic()
    env = {**os.environ, "CARGO_TARGET_DIR": str(project.root / "target")}
    argv = [program, "build", "--release", "--locked"]
    with log.open("w") as out:
        child = subprocess.Popen(
            argv, cwd=project.folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            while True:
                try:
                    child.wait(30)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > BUILD_TIMEOUT:
                        message = f"building Goose {project.version}: over {elapsed:.0f} s"
                        raise BuildError(message) from None
                    compiled = log.read_text(errors="replace").count("Compiling ")
                    say(f"  … Goose {project.version}: {elapsed:.0f} s, {compiled} crates so far")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    if child.returncode != 0 or not project.binary.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(
            f"building Goose {project.version} in {project.folder} failed "
            f"(cargo exit {child.returncode}; whole log {log}):\n{tail}"
        )
    project.binary.touch()  # cargo keeps an unchanged binary's old time; fresh() compares times
    say(f"built Goose {project.version} in {time.monotonic() - started:.0f} s → {project.binary}")


# --- running it ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Totals:
    """What one Goose run counted, in its own words."""

    requests: int
    failures: int
    duration: float  # seconds
    hatch_seconds: float  # launching every user (0.19); -1 when Goose does not say (0.10)
    # from the process's start to its first launch (0.19) or request (0.10): Goose prepares every
    # user's state (an HTTP client each) before launching any, outside its duration; -1: unknown
    prepare_seconds: float


def command(
    project: Project,
    host: str,
    users: int,
    hatch_rate: float,
    seconds: int,
    wait: float,
    report: Path,
) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of one run whose totals ``read_totals(report)`` reads."""
    common = [str(project.binary), f"--host={host}", f"--users={users}"]
    common += [f"--run-time={seconds}s", "--no-reset-metrics"]
    if project.major_minor == "0.10":
        if wait > 0:
            raise ValueError("Goose 0.10's load test has no wait time; use Goose 0.19")
        # (0.10 takes the rate as an integer)
        hatch = f"--hatch-rate={max(1, round(hatch_rate))}"
        return [*common, hatch], {OUT_VARIABLE: str(report)}
    env = {WAIT_VARIABLE: str(round(wait * 1000))} if wait > 0 else {}
    # --no-telnet: its controller would listen on a fixed port; -q: one line a user otherwise
    extra = [f"--increase-rate={hatch_rate:g}", "--no-telnet", "--quiet"]
    return [*common, *extra, f"--report-file={report}"], env


def read_totals(project: Project, report: Path, started_at: float) -> Totals:
    """A finished run's totals, from the file ``command`` named (KeyError/ValueError if odd);
    ``started_at``: ``time.time()`` when the process was started."""
    data = json.loads(report.read_text())
    if project.major_minor == "0.10":
        first = data["first_request_at"]
        return Totals(data["requests"], data["failures"], data["duration"], -1.0, first)
    aggregated = next(row for row in data["raw_request_metrics"] if row["name"] == "Aggregated")
    history = {
        step["action"]: parse_time(step["timestamp"]) for step in data["raw_metrics"]["history"]
    }
    started = history["Increasing"]
    return Totals(
        requests=aggregated["number_of_requests"],
        failures=aggregated["number_of_failures"],
        duration=history["Finished"] - started,
        hatch_seconds=history["Maintaining"] - started,
        prepare_seconds=started - started_at,
    )


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of Goose's RFC 3339 timestamp (nanoseconds cut to micro)."""
    return datetime.fromisoformat(stamp).timestamp()


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    """Build both; 1 when a build fails, 0 without cargo (throughput.py then skips Goose)."""
    if cargo() is None and not all(fresh(project) for project in PROJECTS):
        say("Goose skipped: cargo not found (neither on PATH nor ~/.cargo/bin); install Rust")
        return 0
    code = 0
    for project in PROJECTS:
        try:
            print(ensure(project))
        except BuildError as error:
            say(str(error))
            code = 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
