"""Start the test cluster by hand: ``python -m tests.cluster --kubeconfig /tmp/kc``.

The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), CoreDNS
and our node, built on first use (see ``binaries``). It writes the cluster-admin kubeconfig to
FILE once the cluster is ready and runs until Ctrl-C (or SIGTERM); then it ends every process it
started and removes every network namespace, veth, route, file and folder it made (FILE too).
Use it with ``kubectl --kubeconfig /tmp/kc ...``, ``helm --kubeconfig /tmp/kc ...`` or
``export KUBECONFIG=/tmp/kc``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.cluster import binaries
from tests.cluster.cluster import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument(
        "--admission",
        action="append",
        default=[],
        help="one more admission plugin to enable (repeatable)",
    )
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may be ignored when inherited
        signal.signal(sig, lambda *_: stop.set())
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    cluster = Cluster(workdir, admission=tuple(args.admission))
    try:
        try:
            cluster.start()
        except RuntimeError as error:
            print(f"the cluster did not start: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        shutil.copyfile(cluster.kubeconfig, args.kubeconfig)
        args.kubeconfig.chmod(0o600)
        print(f"cluster at {cluster.url}; kubeconfig: {args.kubeconfig}", flush=True)
        print(
            f"kubectl: {binaries.BIN / 'kubectl'}; pods reach the host at {cluster.host_ip}",
            flush=True,
        )
        print("Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        cluster.stop()
        args.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped; everything it made is removed", flush=True)


if __name__ == "__main__":
    main()
