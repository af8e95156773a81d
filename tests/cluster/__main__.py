"""Start the test cluster by hand: ``python -m tests.cluster --kubeconfig /tmp/kc``.

The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), CoreDNS
and the real node (kubelet, containerd, runc, kube-proxy, kube-router's policy controller), built
on first use (see ``binaries``), in a network namespace and address ranges of its own: nothing is
routed off the machine. It loads the project's image into the node (``tools/image.py``, what
``make image`` runs: nothing to build when the image is cached, minutes when what goes into it
changed; ``--no-image`` skips it) and prints its name and the helm flags that deploy it. It writes
the cluster-admin kubeconfig to FILE once all is ready and runs until Ctrl-C (or SIGTERM); then
it ends every process it started and removes every namespace, link, mount, cgroup and file it
made (FILE too). Use it with ``kubectl --kubeconfig /tmp/kc ...``, ``helm --kubeconfig /tmp/kc
...`` or ``export KUBECONFIG=/tmp/kc``.
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
from tools.image import ensure


def helm_flags(image: str) -> str:
    """The chart's values that deploy ``image`` (``localhost/gaggle:<tag>``)."""
    registry, rest = image.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    return (
        f"--set image.registry={registry} --set image.repository={repository} --set image.tag={tag}"
    )


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
    parser.add_argument(
        "--no-image", action="store_true", help="do not build or load the project's image"
    )
    args = parser.parse_args()
    try:  # before the cluster: a build takes minutes (Ctrl-C ends it)
        archive = None if args.no_image else ensure().archive
    except RuntimeError as error:
        print(f"the project's image was not built: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may be ignored when inherited
        signal.signal(sig, lambda *_: stop.set())
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    cluster = Cluster(workdir, admission=tuple(args.admission))
    try:
        try:
            cluster.start()
            images = cluster.load_image(archive) if archive is not None else []
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
        for image in images:
            print(f"image {image} in the node; helm: {helm_flags(image)}", flush=True)
        print("Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        cluster.stop()
        args.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped; everything it made is removed", flush=True)


if __name__ == "__main__":
    main()
