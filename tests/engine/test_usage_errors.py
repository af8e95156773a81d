"""Bad paths and URLs are usage errors: one line naming the option, exit 2, before any load —
never a traceback and "a bug in gaggle" (review D14, issue item 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, run_gaggle
from tests.engine.test_cli import PLAIN, write

UNREACHABLE = "http://127.0.0.1:9"  # refused at once: a run that slipped through would still end


def _read_only_file() -> str:
    """A path even root cannot create (sysfs refuses new files); skipped where it can."""
    path = "/sys/gaggle-test.json"
    try:
        with open(path, "a"):
            pass
    except OSError:
        return path
    Path(path).unlink()
    pytest.skip("/sys takes new files here")


BAD_PATHS = [
    # (args, the option the line must name)
    (["-m", "/nonexistent/x.json"], "--requests-file"),
    (["-d", "/nonexistent/x.json"], "--debug-file"),
    (["-g", "-L", "/nonexistent/x.log"], "--log-file"),
    (["-L", "/nonexistent/x.log"], "--log-file"),
    (["-m", "/etc/passwd/x.json"], "--requests-file"),  # a file where a directory must be
    (["-d", "/etc/passwd/x.json"], "--debug-file"),
    (["-R", "/etc/passwd/x.json"], "--report-file"),
    (["--processes", "1", "-m", "/nonexistent/x.json"], "--requests-file"),  # its workers' file
]


@pytest.mark.parametrize(("args", "option"), BAD_PATHS)
def test_d14_a_path_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, args: list[str], option: str
) -> None:
    result = run_gaggle("run", write(tmp_path, PLAIN), "--host", UNREACHABLE, "-t", "1", *args)
    _one_line_exit_2(result, [option, f"'{args[-1]}'", "cannot write there"])


@pytest.mark.parametrize(
    ("flag", "option"),
    [("-m", "--requests-file"), ("-d", "--debug-file"), ("-L", "--log-file")],
)
def test_d14_a_directory_or_a_read_only_place_is_refused_before_the_load(
    tmp_path: Path, flag: str, option: str
) -> None:
    test = write(tmp_path, PLAIN)
    for path in (str(tmp_path), _read_only_file()):
        result = run_gaggle("run", test, "--host", UNREACHABLE, "-t", "1", flag, path)
        _one_line_exit_2(result, [option, f"'{path}'", "cannot write there"])


def test_d14_a_log_file_that_cannot_be_written_leaves_the_old_one_alone(tmp_path: Path) -> None:
    """The check comes before anything is opened: a bad -m does not truncate the -L log."""
    log = tmp_path / "gaggle.log"
    log.write_text("yesterday's run\n")
    result = run_gaggle(
        "run", write(tmp_path, PLAIN), "--host", UNREACHABLE, "-t", "1",
        "-L", str(log), "-m", "/nonexistent/x.json",
    )  # fmt: skip
    _one_line_exit_2(result, ["--requests-file"])
    assert log.read_text() == "yesterday's run\n"


def test_d14_a_worker_refuses_its_bad_paths_before_it_looks_for_a_manager(tmp_path: Path) -> None:
    result = run_gaggle(
        "run", write(tmp_path, PLAIN), "--worker", "--manager-host", "127.0.0.1",
        "--manager-port", str(free_port()), "--join-timeout", "30", "-m", "/nonexistent/x.json",
    )  # fmt: skip
    _one_line_exit_2(result, ["--requests-file", "'/nonexistent/x.json'"])


def test_d14_a_program_of_its_own_checks_its_paths_too(tmp_path: Path) -> None:
    """``Attack.execute()`` (a test run as ``python mytest.py``) refuses a bad -L before it
    opens it."""
    program = write(tmp_path, PLAIN + "\nfrom gaggle import Attack\nAttack(Plain).execute()\n")
    for flag, option in (("-L", "--log-file"), ("-m", "--requests-file")):
        result = subprocess.run(
            [sys.executable, program, "--host", UNREACHABLE, "-t", "1", flag, "/nonexistent/x"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert option in result.stderr, result.stderr
        assert "'/nonexistent/x'" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://[::1]x", "http://[zz]", "http://a b", "http://h\x01", "http://a\tb"],
)
def test_d14_a_malformed_host_url_is_a_usage_error(tmp_path: Path, url: str) -> None:
    result = run_gaggle("run", write(tmp_path, PLAIN), "--host", url, "-t", "1")
    _one_line_exit_2(result, ["--host", repr(url), "http://"])


def test_d14_a_task_sets_malformed_host_is_a_usage_error_too(tmp_path: Path) -> None:
    text = PLAIN.replace("wait_time =", "host = 'http://[::1'\n    wait_time =")
    result = run_gaggle("run", write(tmp_path, text), "-t", "1")
    _one_line_exit_2(result, ["Plain.host", "'http://[::1'"])


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_item9_gaggle_operator_help_exits_0(flag: str) -> None:
    for command in (
        [str(Path(sys.executable).with_name("gaggle-operator")), flag],
        [sys.executable, "-m", "gaggle_operator", flag],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: gaggle-operator run")
        assert "gaggle-operator manage" in result.stdout


def test_item9_gaggle_operator_without_a_command_is_still_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gaggle_operator", "operate"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "usage: gaggle-operator" in result.stderr


def _one_line_exit_2(result: subprocess.CompletedProcess[str], words: list[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gaggle: error: ")
    for word in words:
        assert word in lines[0], lines[0]
