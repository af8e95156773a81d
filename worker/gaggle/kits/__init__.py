"""Primitives that import no other gaggle module: the stop signal every wait honours, and
ports and addresses.

- ``stop``: ``StopSignal`` (a reason, a wake-up for every sleeper), signal handlers, a ticker.
- ``ports``: the well-known ports, host:port parsing, a socket on every address.
"""
