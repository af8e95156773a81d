"""Which role a process plays — standalone, manager or worker — from the Gaggle-mode flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import TypedDict

from gaggle.config import ConfigError
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


def _join_timeout(value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise ConfigError("--join-timeout", value, "use seconds > 0 (at most a day), e.g. 60")
    return seconds


def _pem(flag: str, value: object) -> str:
    path = str(value)
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as error:
        raise ConfigError(flag, value, f"a readable PEM file ({error.strerror})") from None
    if b"-----BEGIN " not in text:
        raise ConfigError(flag, value, "a PEM file (it has no -----BEGIN line)")
    return path


class _Security(TypedDict):
    token: str
    tls_cert: str
    tls_key: str
    tls_ca: str


def _security(flags: dict[str, object], manager: bool) -> _Security:
    """The token (flag, else $GAGGLE_TOKEN) and TLS files, checked before anything connects."""
    token = str(flags.get("gaggle_token") or os.environ.get("GAGGLE_TOKEN", ""))
    files = {key: _pem("--" + key.replace("_", "-"), flags[key])
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
        processes = _processes(flags["processes"])
        if processes > 1:
            return Role(kind="local", processes=processes, bind_host="127.0.0.1", bind_port=0)
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
            bind_port=_port("--manager-bind-port", flags.get("manager_bind_port", GRPC_PORT)),
            hash_check=not flags.get("no_hash_check", False),
            **_security(flags, manager=True),
        )
    if worker:
        return Role(
            kind="worker",
            manager_host=_host("--manager-host", flags.get("manager_host", "127.0.0.1")),
            manager_port=_port("--manager-port", flags.get("manager_port", GRPC_PORT)),
            join_timeout=_join_timeout(flags.get("join_timeout", 60)),
            leave_on_sigterm=bool(flags.get("leave_on_sigterm", False)),
            **_security(flags, manager=False),
        )
    return Role()
