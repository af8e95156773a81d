"""Primitives that import no other gaggle module: the stop signal every wait honours, and
ports and addresses.

- ``stop``: ``StopSignal`` (a reason, a wake-up for every sleeper), signal handlers, a ticker.
- ``ports``: the well-known ports, host:port parsing, a socket on every address.
"""

from gaggle.kits.ports import (
    EVERY_ADDRESS,
    GRPC_PORT,
    METRICS_PORT,
    every_address_socket,
    is_loopback,
    join_host_port,
    split_host_port,
)
from gaggle.kits.stop import SignalHandlers, Sleepers, StopSignal, every_interval, wake

__all__ = [
    "EVERY_ADDRESS",
    "GRPC_PORT",
    "METRICS_PORT",
    "SignalHandlers",
    "Sleepers",
    "StopSignal",
    "every_address_socket",
    "every_interval",
    "is_loopback",
    "join_host_port",
    "split_host_port",
    "wake",
]
