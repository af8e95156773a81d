"""Start the local cluster by hand: ``python -m tests.cluster --kubeconfig /tmp/kc``.

It runs until Ctrl-C (or SIGTERM), then kills its pods and removes every network namespace,
veth, bridge and hosts file it made. Use it with ``kubectl --kubeconfig /tmp/kc ...`` or
``export KUBECONFIG=/tmp/kc``.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path

from tests.cluster.server import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (0: any)")
    parser.add_argument(
        "--network",
        choices=["auto", "netns", "host"],
        default="auto",
        help="pods in their own network namespaces (netns, needs root) or on the host's",
    )
    parser.add_argument("--no-kubelet", action="store_true", help="serve the API only")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may be ignored when inherited
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="gaggle-cluster-") as workdir:
        cluster = Cluster(
            Path(workdir), kubelet=not args.no_kubelet, network=args.network, port=args.port
        )
        cluster.start()
        try:
            cluster.write_kubeconfig(args.kubeconfig)
            print(f"local cluster at {cluster.url}; kubeconfig: {args.kubeconfig}", flush=True)
            if cluster.incluster is not None:
                print(f"pods reach it at {cluster.incluster.url}", flush=True)
            if cluster.kubelet is not None:
                print(f"pods: {cluster.kubelet.describe()}", flush=True)
            print("Ctrl-C to stop", flush=True)
            stop.wait()
        finally:
            cluster.stop()
            print("stopped; everything it made is removed", flush=True)


if __name__ == "__main__":
    main()
