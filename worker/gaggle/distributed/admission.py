"""Whether the manager lets a worker join: the token, the protocol, the gaggle's state and the
test's rules — each refusal said in words the worker prints and exits with."""

from __future__ import annotations

import logging

from gaggle._version import __version__
from gaggle.distributed.protocol import PROTOCOL_VERSION
from gaggle.distributed.rules import rules_difference
from gaggle.distributed.security import token_matches
from gaggle.options import Role
from gaggle.wire import gaggle_pb2 as wire

log = logging.getLogger(__name__)


def why_not_join(
    hello: wire.Hello,
    role: Role,
    rules_hash: str,
    rules_json: str,
    started: bool,
    joined: int,
    stop_reason: str,
) -> str:
    """Why this worker may not join ("" when it may)."""
    if role.token and not token_matches(role.token, hello.token):
        return "wrong or missing token (--gaggle-token or $GAGGLE_TOKEN, as on the manager)"
    if hello.protocol_version != PROTOCOL_VERSION:
        return (
            f"protocol version {hello.protocol_version} is not {PROTOCOL_VERSION} "
            f"(worker gaggle {hello.gaggle_version}, manager gaggle {__version__})"
        )
    if stop_reason:
        return f"the gaggle is stopping ({stop_reason})"
    if not started and joined >= role.expect_workers:
        return f"the gaggle already has its {role.expect_workers} worker(s)"
    if hello.rules_hash != rules_hash:
        what = rules_difference(rules_json, hello.rules_json)
        message = (
            f"the test rules differ: manager {rules_hash[:12]}, worker "
            f"{hello.rules_hash[:12]} ({what})"
        )
        if role.hash_check:
            return message + "; run the same test file, or --no-hash-check on the manager"
        log.warning("%s (allowed by --no-hash-check)", message)
    return ""
