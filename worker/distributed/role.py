"""Which role a process plays — standalone, manager or worker — from the Gaggle-mode flags."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gaggle.config import ConfigError

DEFAULT_PORT = 5115


@dataclass(frozen=True, slots=True)
class Role:
    kind: str = "standalone"  # standalone | manager | worker | local (--processes N)
    processes: int = 1
    expect_workers: int = 0
    bind_host: str = "0.0.0.0"
    bind_port: int = DEFAULT_PORT
    manager_host: str = "127.0.0.1"
    manager_port: int = DEFAULT_PORT
    hash_check: bool = True


def _port(flag: str, value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(flag, value, "use a port number from 1 to 65535")
    return port


def _host(flag: str, value: object) -> str:
    text = str(value).strip()
    if not text or "/" in text or " " in text:
        raise ConfigError(flag, value, "use a host name or IP address, e.g. 127.0.0.1")
    return text


def _processes(value: object) -> int:
    if str(value).strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError("--processes", value, "use a whole number ≥ 1 or auto (one per CPU)")
    return count


def role_from(flags: dict[str, object]) -> Role:
    manager, worker = bool(flags.get("manager")), bool(flags.get("worker"))
    if "processes" in flags:
        if manager or worker:
            raise ConfigError(
                "--processes", flags["processes"], "it runs its own manager and workers"
            )
        processes = _processes(flags["processes"])
        if processes > 1:
            return Role(kind="local", processes=processes, bind_host="127.0.0.1", bind_port=0)
    if manager and worker:
        raise ConfigError("--worker", True, "a process is either --manager or --worker, not both")
    manager_only = ("expect_workers", "manager_bind_host", "manager_bind_port", "no_hash_check")
    worker_only = ("manager_host", "manager_port")
    for key in manager_only:
        if key in flags and not manager:
            raise ConfigError("--" + key.replace("_", "-"), flags[key], "it goes with --manager")
    for key in worker_only:
        if key in flags and not worker:
            raise ConfigError("--" + key.replace("_", "-"), flags[key], "it goes with --worker")
    if manager:
        if "expect_workers" not in flags:
            raise ConfigError("--expect-workers", None, "--manager needs --expect-workers N (≥ 1)")
        try:
            expect = int(str(flags["expect_workers"]))
        except ValueError:
            expect = 0
        if expect < 1:
            raise ConfigError("--expect-workers", flags["expect_workers"], "use a whole number ≥ 1")
        return Role(
            kind="manager",
            expect_workers=expect,
            bind_host=_host("--manager-bind-host", flags.get("manager_bind_host", "0.0.0.0")),
            bind_port=_port("--manager-bind-port", flags.get("manager_bind_port", DEFAULT_PORT)),
            hash_check=not flags.get("no_hash_check", False),
        )
    if worker:
        return Role(
            kind="worker",
            manager_host=_host("--manager-host", flags.get("manager_host", "127.0.0.1")),
            manager_port=_port("--manager-port", flags.get("manager_port", DEFAULT_PORT)),
        )
    return Role()
