"""The Gaggle-mode options: which role a process plays and how it reaches the others.

Declared like the run options (``options.fields``), as the fields of one model: its defaults are
what a role gets when a flag is not given (``Role``'s defaults too), its converters check the
values.
``conflicts.role_from`` reads given flags into a ``Role`` and cross-checks combinations
(``--worker`` with ``--manager``, ``--tls-cert`` without ``--tls-key``). The operator sets all
of them itself, from the LoadTest's shape.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gaggle.kits import GRPC_PORT
from gaggle.options.converters import (
    MAX_WORKERS,
    WORKERS_WHY,
    host_name,
    join_timeout,
    pem,
    port,
    processes,
    text,
    whole,
)
from gaggle.options.fields import GAGGLE, OPERATOR, option, options_of


@dataclass(frozen=True, slots=True)
class RoleOptions:
    manager: bool = option(
        "--manager",
        default=False,
        action="store_true",
        group=GAGGLE,
        spec=OPERATOR,
        help="run as the manager",
    )
    expect_workers: int = option(
        "--expect-workers",
        default=0,  # none: a manager must be given it
        convert=whole(1, MAX_WORKERS, WORKERS_WHY),
        group=GAGGLE,
        spec=OPERATOR,
        metavar="N",
        help="workers to wait for",
        doc="the manager waits for N workers, then starts them together",
    )
    no_hash_check: bool = option(
        "--no-hash-check",
        default=False,
        action="store_true",
        group=GAGGLE,
        spec=OPERATOR,
        help="let workers with other rules join",
        doc="the manager lets workers with other rules join, with a warning",
    )
    manager_bind_host: str = option(
        "--manager-bind-host",
        default="0.0.0.0",
        convert=host_name,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="HOST",
        help="manager listens on (default: 0.0.0.0)",
        doc="the address the manager listens on (default `0.0.0.0`; `::` is every address, "
        "IPv4 and IPv6)",
    )
    manager_bind_port: int = option(
        "--manager-bind-port",
        default=GRPC_PORT,
        convert=port,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="PORT",
        help=f"manager port (default: {GRPC_PORT})",
        doc=f"the manager's port (default {GRPC_PORT})",
    )
    processes: int = option(
        "--processes",
        default=1,
        convert=processes,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="N|auto",
        help="a local manager and N worker processes (auto: CPUs)",
        doc="a manager on 127.0.0.1 and N worker processes of this machine (`auto`: one per "
        "CPU; [below](#gaggle-mode-one-manager-n-workers))",
    )
    worker: bool = option(
        "--worker",
        default=False,
        action="store_true",
        group=GAGGLE,
        spec=OPERATOR,
        help="run as a worker",
    )
    manager_host: str = option(
        "--manager-host",
        default="127.0.0.1",
        convert=host_name,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="HOST",
        help="manager to join (default: 127.0.0.1)",
        doc="the manager a worker joins (default `127.0.0.1`)",
    )
    manager_port: int = option(
        "--manager-port",
        default=GRPC_PORT,
        convert=port,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="PORT",
        help=f"its port (default: {GRPC_PORT})",
        doc=f"its port (default {GRPC_PORT})",
    )
    join_timeout: float = option(
        "--join-timeout",
        default=60.0,  # time for a manager pod to start
        convert=join_timeout,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="SECONDS",
        help="worker: keep trying to reach the manager this long (default: 60)",
    )
    leave_on_sigterm: bool = option(
        "--leave-on-sigterm",
        default=False,
        action="store_true",
        group=GAGGLE,
        spec=OPERATOR,
        help="worker: SIGTERM makes this worker leave; the gaggle goes on (e.g. a deleted pod)",
    )
    gaggle_token: str = option(
        "--gaggle-token",
        default="",  # then $GAGGLE_TOKEN (role_from reads it)
        convert=text,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="TOKEN",
        help="shared secret workers must present (default: $GAGGLE_TOKEN)",
        doc="a shared secret every worker must present (default `$GAGGLE_TOKEN`)",
    )
    tls_cert: str = option(
        "--tls-cert",
        default="",
        convert=pem,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="PEM",
        help="TLS certificate chain",
        doc="a TLS certificate chain (PEM): the manager serves TLS, a worker presents it",
    )
    tls_key: str = option(
        "--tls-key",
        default="",
        convert=pem,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="PEM",
        help="its private key",
        doc="its private key (PEM)",
    )
    tls_ca: str = option(
        "--tls-ca",
        default="",
        convert=pem,
        group=GAGGLE,
        spec=OPERATOR,
        metavar="PEM",
        help="CA to verify the peer (on the manager: require worker certificates)",
        doc="a CA (PEM) to verify the peer; on the manager it requires worker certificates "
        "(mutual TLS)",
    )


ROLE_OPTIONS = options_of(RoleOptions)
NOT_GIVEN = RoleOptions()  # the values of flags not given


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
    def load_shares(self) -> int:
        """How many processes share the run's users and arrivals: a manager's workers,
        --processes' workers, else this one."""
        if self.kind is RoleKind.MANAGER:
            return self.expect_workers
        if self.kind is RoleKind.LOCAL:
            return self.processes
        return 1

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_key or self.tls_ca)
