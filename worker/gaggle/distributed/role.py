"""Which role a process plays — standalone, manager or worker — from the Gaggle-mode flags.

The flags themselves (converters, defaults) are declared in gaggle.options.role; here is what
only makes sense across them: which flags go with which role, and which need each other.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any, TypedDict

from gaggle.errors import ConfigError
from gaggle.options.role import NOT_GIVEN, ROLE_OPTIONS

_OPTIONS = {entry.name: entry for entry in ROLE_OPTIONS}


class RoleKind(enum.StrEnum):
    STANDALONE = "standalone"  # users on this process, nothing else
    MANAGER = "manager"
    WORKER = "worker"
    LOCAL = "local"  # --processes N: a manager on 127.0.0.1 and N worker processes


@dataclass(frozen=True, slots=True)
class Role:
    kind: RoleKind = RoleKind.STANDALONE
    processes: int = NOT_GIVEN.processes
    expect_workers: int = NOT_GIVEN.expect_workers
    bind_host: str = NOT_GIVEN.manager_bind_host
    bind_port: int = NOT_GIVEN.manager_bind_port
    manager_host: str = NOT_GIVEN.manager_host
    manager_port: int = NOT_GIVEN.manager_port
    hash_check: bool = not NOT_GIVEN.no_hash_check
    token: str = ""  # --gaggle-token or $GAGGLE_TOKEN: a worker must present the manager's
    tls_cert: str = ""  # PEM files; a manager with --tls-ca requires client certificates
    tls_key: str = ""
    tls_ca: str = ""
    join_timeout: float = NOT_GIVEN.join_timeout  # how long a worker tries to reach its manager
    leave_on_sigterm: bool = False  # worker: SIGTERM leaves the gaggle instead of stopping it

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_key or self.tls_ca)


def _value(flags: dict[str, object], name: str) -> Any:
    """A flag's value checked by its converter, or its default when it was not given."""
    entry = _OPTIONS[name]
    return entry.check(flags[name]) if name in flags else entry.default


def _flag(name: str) -> str:
    return _OPTIONS[name].flag


class _Security(TypedDict):
    token: str
    tls_cert: str
    tls_key: str
    tls_ca: str


def _security(flags: dict[str, object], manager: bool) -> _Security:
    """The token (flag, else $GAGGLE_TOKEN) and TLS files, checked before anything connects."""
    token = str(_value(flags, "gaggle_token") or os.environ.get("GAGGLE_TOKEN", ""))
    keys = ("tls_cert", "tls_key", "tls_ca")
    files = {key: _value(flags, key) for key in keys if flags.get(key)}
    if bool(files.get("tls_cert")) != bool(files.get("tls_key")):
        given = "tls_cert" if files.get("tls_cert") else "tls_key"
        pair = "it needs its pair: --tls-cert and --tls-key go together"
        raise ConfigError(_flag(given), flags.get(given), pair)
    if manager and files and not files.get("tls_cert"):
        raise ConfigError(
            _flag("tls_ca"), files["tls_ca"], "a TLS manager needs --tls-cert and --tls-key too"
        )
    return _Security(
        token=token,
        tls_cert=files.get("tls_cert", ""),
        tls_key=files.get("tls_key", ""),
        tls_ca=files.get("tls_ca", ""),
    )


def role_from(flags: dict[str, object]) -> Role:
    manager, worker = bool(flags.get("manager")), bool(flags.get("worker"))
    if "processes" in flags:
        if manager or worker:
            raise ConfigError(
                _flag("processes"), flags["processes"], "it runs its own manager and workers"
            )
        processes = _value(flags, "processes")
        if processes > 1:
            return Role(
                kind=RoleKind.LOCAL, processes=processes, bind_host="127.0.0.1", bind_port=0
            )
    if manager and worker:
        raise ConfigError("--worker", True, "a process is either --manager or --worker, not both")
    manager_only = ("expect_workers", "manager_bind_host", "manager_bind_port", "no_hash_check")
    worker_only = ("manager_host", "manager_port", "join_timeout", "leave_on_sigterm")
    either = ("gaggle_token", "tls_cert", "tls_key", "tls_ca")
    for key in either:
        if key in flags and not (manager or worker):
            raise ConfigError(_flag(key), flags[key], "it goes with --manager or --worker")
    for key in manager_only:
        if key in flags and not manager:
            raise ConfigError(_flag(key), flags[key], "it goes with --manager")
    for key in worker_only:
        if key in flags and not worker:
            raise ConfigError(_flag(key), flags[key], "it goes with --worker")
    if manager:
        if "expect_workers" not in flags:
            raise ConfigError("--expect-workers", None, "--manager needs --expect-workers N (≥ 1)")
        return Role(
            kind=RoleKind.MANAGER,
            expect_workers=_value(flags, "expect_workers"),
            bind_host=_value(flags, "manager_bind_host"),
            bind_port=_value(flags, "manager_bind_port"),
            hash_check=not _value(flags, "no_hash_check"),
            **_security(flags, manager=True),
        )
    if worker:
        return Role(
            kind=RoleKind.WORKER,
            manager_host=_value(flags, "manager_host"),
            manager_port=_value(flags, "manager_port"),
            join_timeout=_value(flags, "join_timeout"),
            leave_on_sigterm=_value(flags, "leave_on_sigterm"),
            **_security(flags, manager=False),
        )
    return Role()
