"""Which role a process plays — standalone, manager or worker — from the Gaggle-mode flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import TypedDict

from gaggle.converters import ConfigError, host_name, join_timeout, pem, port, processes, whole
from gaggle.ports import GRPC_PORT


@dataclass(frozen=True, slots=True)
class Role:
    kind: str = "standalone"  # standalone | manager | worker | local (--processes N)
    processes: int = 1
    expect_workers: int = 0
    bind_host: str = "0.0.0.0"
    bind_port: int = GRPC_PORT
    manager_host: str = "127.0.0.1"
    manager_port: int = GRPC_PORT
    hash_check: bool = True
    token: str = ""  # --gaggle-token or $GAGGLE_TOKEN: a worker must present the manager's
    tls_cert: str = ""  # PEM files; a manager with --tls-ca requires client certificates
    tls_key: str = ""
    tls_ca: str = ""
    join_timeout: float = 60.0  # how long a worker keeps trying to reach its manager
    leave_on_sigterm: bool = False  # worker: SIGTERM leaves the gaggle instead of stopping it

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_key or self.tls_ca)


class _Security(TypedDict):
    token: str
    tls_cert: str
    tls_key: str
    tls_ca: str


def _security(flags: dict[str, object], manager: bool) -> _Security:
    """The token (flag, else $GAGGLE_TOKEN) and TLS files, checked before anything connects."""
    token = str(flags.get("gaggle_token") or os.environ.get("GAGGLE_TOKEN", ""))
    files = {key: pem("--" + key.replace("_", "-"), flags[key])
             for key in ("tls_cert", "tls_key", "tls_ca") if flags.get(key)}  # fmt: skip
    if bool(files.get("tls_cert")) != bool(files.get("tls_key")):
        given = "--tls-cert" if files.get("tls_cert") else "--tls-key"
        raise ConfigError(given, flags.get(given[2:].replace("-", "_")), "it needs its pair: "
                          "--tls-cert and --tls-key go together")  # fmt: skip
    if manager and files and not files.get("tls_cert"):
        raise ConfigError(
            "--tls-ca", files["tls_ca"], "a TLS manager needs --tls-cert and --tls-key too"
        )
    return _Security(
        token=token,
        tls_cert=files.get("tls_cert", ""),
        tls_key=files.get("tls_key", ""),
        tls_ca=files.get("tls_ca", ""),
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def role_from(flags: dict[str, object]) -> Role:
    manager, worker = bool(flags.get("manager")), bool(flags.get("worker"))
    if "processes" in flags:
        if manager or worker:
            raise ConfigError(
                "--processes", flags["processes"], "it runs its own manager and workers"
            )
        count = processes("--processes", flags["processes"])
        if count > 1:
            return Role(kind="local", processes=count, bind_host="127.0.0.1", bind_port=0)
    if manager and worker:
        raise ConfigError("--worker", True, "a process is either --manager or --worker, not both")
    manager_only = ("expect_workers", "manager_bind_host", "manager_bind_port", "no_hash_check")
    worker_only = ("manager_host", "manager_port", "join_timeout", "leave_on_sigterm")
    either = ("gaggle_token", "tls_cert", "tls_key", "tls_ca")
    for key in either:
        if key in flags and not (manager or worker):
            flag = "--" + key.replace("_", "-")
            raise ConfigError(flag, flags[key], "it goes with --manager or --worker")
    for key in manager_only:
        if key in flags and not manager:
            raise ConfigError("--" + key.replace("_", "-"), flags[key], "it goes with --manager")
    for key in worker_only:
        if key in flags and not worker:
            raise ConfigError("--" + key.replace("_", "-"), flags[key], "it goes with --worker")
    if manager:
        if "expect_workers" not in flags:
            raise ConfigError("--expect-workers", None, "--manager needs --expect-workers N (≥ 1)")
        expect = whole(1)("--expect-workers", flags["expect_workers"])
        return Role(
            kind="manager",
            expect_workers=expect,
            bind_host=host_name("--manager-bind-host", flags.get("manager_bind_host", "0.0.0.0")),
            bind_port=port("--manager-bind-port", flags.get("manager_bind_port", GRPC_PORT)),
            hash_check=not flags.get("no_hash_check", False),
            **_security(flags, manager=True),
        )
    if worker:
        return Role(
            kind="worker",
            manager_host=host_name("--manager-host", flags.get("manager_host", "127.0.0.1")),
            manager_port=port("--manager-port", flags.get("manager_port", GRPC_PORT)),
            join_timeout=join_timeout("--join-timeout", flags.get("join_timeout", 60)),
            leave_on_sigterm=bool(flags.get("leave_on_sigterm", False)),
            **_security(flags, manager=False),
        )
    return Role()
