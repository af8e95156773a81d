"""``--processes N``: a manager on 127.0.0.1 plus N worker processes of the same test file, so
one machine uses all its cores through exactly the code path of a distributed gaggle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gaggle.distributed.manager import Manager
from gaggle.distributed.security import new_token
from gaggle.options import RUN_OPTIONS, Role, RoleKind, as_flags
from gaggle.run import EXIT_THRESHOLDS, RunPlan

WORKER_EXIT_TIMEOUT = 30.0


def per_worker_file(path: str, index: int) -> str:
    """``requests.json`` → ``requests-2.json`` for worker 2: each worker writes its own log."""
    file = Path(path)
    return str(file.with_name(f"{file.stem}-{index}{file.suffix}"))


def worker_flags(options: dict[str, object], index: int) -> list[str]:
    """The flags worker ``index`` of ``--processes`` keeps for itself (the option table's
    per-worker options): the values given to ``gaggle run``, each file numbered for the worker."""
    own: dict[str, object] = {}
    for entry in RUN_OPTIONS:
        value = options.get(entry.name)
        if value and entry.per_worker == "numbered":
            own[entry.name] = per_worker_file(str(value), index)
        elif value and entry.per_worker == "same":
            own[entry.name] = value
    return as_flags(own)


async def run_local(
    path: str, plan: RunPlan, role: Role, rules: tuple[str, str], options: dict[str, object]
) -> int:
    """Run the gaggle; the exit code is the worst of the workers' and the verdict's (3 when a
    threshold failed; 0 when all went well)."""
    token = new_token()  # other local users cannot join (or steal) this gaggle
    manager = Manager(
        plan,
        Role(
            kind=RoleKind.MANAGER,
            expect_workers=role.processes,
            bind_host="127.0.0.1",
            bind_port=0,
            token=token,
        ),
        *rules,
    )
    environment = {**os.environ, "GAGGLE_TOKEN": token}
    workers: list[subprocess.Popen[bytes]] = []

    def spawn(port: int) -> None:
        for index in range(1, role.processes + 1):
            command = [
                sys.executable,
                "-m",
                "gaggle",
                "run",
                path,
                "--worker",
                "--manager-host",
                "127.0.0.1",
                "--manager-port",
                str(port),
                *worker_flags(options, index),
                "--no-live",  # its output goes nowhere: no status lines to make
            ]
            workers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, env=environment))

    manager.on_listening = spawn
    try:
        result = await manager.run()
    finally:
        codes = [await asyncio.to_thread(_reap, worker) for worker in workers]
    return max([*codes, 0 if result.passed else EXIT_THRESHOLDS])


def _reap(worker: subprocess.Popen[bytes]) -> int:
    try:
        return worker.wait(timeout=WORKER_EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()  # only our own child, by its handle
        worker.wait()
        return 1
