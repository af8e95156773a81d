"""``gaggle-operator run``: the operator as its Deployment runs it — kopf behind a Lease.

Why not plain ``kopf run``: with two operator pods at once (an eviction, an unreachable node, or
``replicas: 2`` for a quick failover) only one may act (lease.py says why a Lease, not kopf's
peering), and a standby must still answer its liveness probe. So the health endpoint is ours
and is served from the start, on every address of both families (an IPv6-only cluster probes
the pod's v6 address; kopf's own endpoint listens on one address of one family); kopf starts
once this process holds the Lease (and has read the install's key, key.py) and is stopped if
it cannot renew it. We also hand kopf an
identity, so it never asks ``getpass`` for a user name the image's uid may not have.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from gaggle.kits import every_address_socket
from gaggle_operator import relay as relay_module
from gaggle_operator.key import operator_key
from gaggle_operator.kube import words
from gaggle_operator.lease import Election, Timing

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
log = logging.getLogger("gaggle.operator")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gaggle-operator run", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    where.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeat for more)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="serve GET /healthz on every address here (0: none)",
    )
    parser.add_argument(
        "--lease",
        default="gaggle-operator",
        metavar="NAME",
        help="the Lease the operators of one install share",
    )
    parser.add_argument(
        "--lease-namespace",
        metavar="NS",
        help="where the Lease lives (default: $POD_NAMESPACE, else its pod's)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=Timing.duration,
        metavar="S",
        help="a silent leader is replaced after this long",
    )
    parser.add_argument("--verbose", action="store_true", help="kopf's verbose log")
    args = parser.parse_args(argv)
    if not 0 <= args.health_port <= 65535:
        parser.error(f"--health-port {args.health_port}: use a port, 0..65535")
    if args.lease_seconds < 3:
        parser.error(f"--lease-seconds {args.lease_seconds}: use 3 seconds or more")
    if args.lease_namespace is None:
        args.lease_namespace = os.environ.get("POD_NAMESPACE") or (
            SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
            if SERVICE_ACCOUNT_NAMESPACE.exists()
            else None
        )
    if not args.lease_namespace:
        parser.error("--lease-namespace: not in a pod and $POD_NAMESPACE unset: name one")
    return args


def timing(seconds: float) -> Timing:
    """client-go's proportions (15 s lease, 10 s to renew, a try every 2 s), scaled."""
    return Timing(duration=seconds, renew_deadline=seconds * 2 / 3, retry=seconds * 2 / 15)


async def serve_health(port: int, election: Election) -> web.AppRunner | None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"leader": election.renewed_at > 0, "identity": election.identity})

    if not port:
        return None
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, every_address_socket(port)).start()
    return runner


async def campaign(election: Election, stopping: asyncio.Event) -> bool:
    """Try until this process holds the Lease (True) or is told to stop (False)."""
    told = ""
    while not stopping.is_set():
        try:
            if await asyncio.to_thread(election.try_acquire_or_renew):
                log.info(
                    "holding Lease %s/%s as %s: operating",
                    election.namespace,
                    election.name,
                    election.identity,
                )
                return True
            holder = await asyncio.to_thread(election.holder)
            if holder != told:
                log.info(
                    "standing by: Lease %s/%s is held by %s",
                    election.namespace,
                    election.name,
                    holder,
                )
                told = holder
        except (ApiException, OSError) as error:
            reason = words(error) if isinstance(error, ApiException) else str(error)
            log.warning("cannot read Lease %s/%s: %s", election.namespace, election.name, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), election.timing.retry)
    return False


async def keep(election: Election, lost: asyncio.Event) -> None:
    """Renew until a renewal has failed for ``renew_deadline``; then say so and set ``lost``."""
    while True:
        await asyncio.sleep(election.timing.retry)
        try:
            if await asyncio.to_thread(election.try_acquire_or_renew):
                continue
            why = f"held by {await asyncio.to_thread(election.holder)}"
        except (ApiException, OSError) as error:
            why = words(error) if isinstance(error, ApiException) else str(error)
        if time.monotonic() - election.renewed_at > election.timing.renew_deadline:
            log.error("lost Lease %s/%s (%s): stopping", election.namespace, election.name, why)
            lost.set()
            return


async def operate(args: argparse.Namespace) -> int:
    import kopf

    kopf.configure(verbose=args.verbose, log_prefix=None)  # as `kopf run`: [ns/name] prefixes
    import gaggle_operator.handlers  # noqa: F401  # registers the handlers with kopf

    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    election = Election(args.lease_namespace, args.lease, identity, timing(args.lease_seconds))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    health = await serve_health(args.health_port, election)
    try:
        if not await campaign(election, stopping):
            return 0
        # the install's key, for the LoadTests' tokens (relay.py): the same for every replica
        key = await asyncio.to_thread(operator_key, args.lease_namespace, f"{args.lease}-key")
        relay_module.use_key(key)
        lost = asyncio.Event()
        keeper = asyncio.create_task(keep(election, lost))
        # kopf installs its own SIGTERM/SIGINT handlers and returns when told to stop
        kopf_stop = asyncio.Event()
        stopper = asyncio.create_task(_stop_when(lost, kopf_stop))
        await kopf.operator(
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=args.namespaces or (),
            identity=identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
            stop_flag=kopf_stop,
        )
        keeper.cancel()
        stopper.cancel()
        if lost.is_set():
            return 1
        await asyncio.to_thread(election.release)
        return 0
    finally:
        if health is not None:
            await health.cleanup()


async def _stop_when(lost: asyncio.Event, stop: asyncio.Event) -> None:
    await lost.wait()
    stop.set()


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    try:
        return asyncio.run(operate(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
