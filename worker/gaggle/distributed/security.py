"""Who may join a gaggle: a shared token on every stream, and TLS (mutual with a CA) on the wire.

A manager that listens beyond loopback without a token lets anyone who can reach its port join and
be handed load to generate, so that case gets a warning. ``--processes`` makes a random token of its
own: other local users cannot join a local gaggle either.
"""

from __future__ import annotations

import hmac
import logging
import secrets

import grpc

from gaggle.kits import is_loopback
from gaggle.options import Role

log = logging.getLogger(__name__)

# Reconnects and liveness: a worker retries the manager quickly at first, then every few seconds.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 3000),
]


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def server_credentials(role: Role) -> grpc.ServerCredentials | None:
    if not role.tls:
        return None
    pair = (_read(role.tls_key), _read(role.tls_cert))
    ca = _read(role.tls_ca) if role.tls_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=bool(ca))


def channel_credentials(role: Role) -> grpc.ChannelCredentials | None:
    if not role.tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(role.tls_ca) if role.tls_ca else None,
        private_key=_read(role.tls_key) if role.tls_key else None,
        certificate_chain=_read(role.tls_cert) if role.tls_cert else None,
    )


def warn_if_open(role: Role) -> None:
    if not role.token and not is_loopback(role.bind_host):
        log.warning(
            "the manager listens on %s without --gaggle-token: anyone who reaches this port can "
            "join and be given load to send (set GAGGLE_TOKEN on the manager and its workers)",
            role.bind_host,
        )
