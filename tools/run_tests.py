"""The whole suite as ``make test`` runs it: two pytest processes at once.

Why two: the test cluster's tests (marked ``cluster`` by tests/conftest.py) mostly wait on a
real control plane and pods, while the rest mostly keep a core busy with load; run one after
the other they took longer than CI's budget. They cannot share a process pool (one cluster per
machine at a time, and a module's Helm release is shared by its tests), so the cluster's tests
run in one process, in file order, and the rest in the other. The cluster half streams to the
terminal; the other half's output follows when it is done. Extra arguments go to both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HALVES = {"cluster": "cluster", "rest": "not cluster"}


def main(extra: list[str]) -> int:
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="gaggle-tests-"))
    common = ["-p", "no:cacheprovider", "--durations=15", *extra]
    with (work / "rest.log").open("w") as rest_log:
        rest = subprocess.Popen(
            [python, "-m", "pytest", "-m", HALVES["rest"], f"--basetemp={work / 'rest'}",
             *common],
            cwd=ROOT, stdout=rest_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            cluster = subprocess.run(
                [python, "-m", "pytest", "-m", HALVES["cluster"],
                 f"--basetemp={work / 'cluster'}", *common],
                cwd=ROOT, check=False,
            ).returncode  # fmt: skip
            rest_code = rest.wait()
        finally:
            if rest.poll() is None:  # interrupted: end what we started
                rest.terminate()
                rest.wait(timeout=30)
    print("\n===== the rest of the suite (beside the cluster's tests) =====", flush=True)
    sys.stdout.write((work / "rest.log").read_text())
    shutil.rmtree(work, ignore_errors=True)
    codes = {"cluster": cluster, "rest": rest_code}
    print(f"\nexit codes: {codes}", flush=True)
    # 5: "no tests collected" in a half (a -k that selects only the other half) is not a failure
    return max((code for code in codes.values() if code != 5), default=0)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
