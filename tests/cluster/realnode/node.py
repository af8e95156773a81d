"""The real node as one object: its namespace, cgroups, images, containerd, kubelet, kube-proxy.

    node = RealNode(workdir, cluster.net, cluster.control)
    node.start(deadline)       # after the control plane and CoreDNS; ~5 s
    node.load_image(archive)   # any image archive ctr can import (OCI layout, docker-archive)
    node.stop()                # bounded; idempotent; also after a failed start

``start`` installs what it needs with apt-get (``install``), notes the host state it is about to
touch (``host.prepare``, ``Network.note``), then brings the parts up in order; each process is
recorded (``Network.started``) so that a later cluster ends it if this one is killed. ``stop``
stops the kubelet first (so it restarts nothing), then kube-proxy, kills the pods (their cgroups)
and containerd and removes everything left (``host.remove``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from tests.cluster.controlplane import ControlPlane
from tests.cluster.network import Network
from tests.cluster.realnode import cgroups, cni, host, images, netns, policy
from tests.cluster.realnode.containerd import CNI_BIN, RUNC, Containerd
from tests.cluster.realnode.kube_proxy import KubeProxy
from tests.cluster.realnode.kubelet import Kubelet

NFT = Path("/usr/sbin/nft")
# what the node runs, and the Debian package of each
PACKAGES = {
    RUNC: "runc",
    CNI_BIN / "bridge": "containernetworking-plugins",
    NFT: "nftables",
    Path("/usr/bin/nsenter"): "util-linux",
}


def install() -> None:
    """apt-get what is missing (as root), like ``network.install_tools``; raise if still so."""
    wanted = sorted({pkg for path, pkg in PACKAGES.items() if not path.exists()})
    if wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", *wanted], check=False, timeout=600)
    images.install()
    missing = [f"{path} (apt-get install {pkg})" for path, pkg in PACKAGES.items()
               if not path.exists()]  # fmt: skip
    if missing:
        raise RuntimeError(f"the real node needs {', '.join(missing)}")


class RealNode:
    def __init__(self, workdir: Path, net: Network, control: ControlPlane) -> None:
        self.workdir, self.net, self.control = workdir, net, control
        self.cid = net.cid
        self.node_ip = f"{net.subnet}.2"
        enter = netns.enter(self.cid)
        self.pause: images.Image | None = None  # made at start, once the packages are there
        self.toolbox: images.Image | None = None
        self.containerd = Containerd(workdir, enter, self.node_ip)
        self.kubelet = Kubelet(workdir, enter, self.node_ip)
        self.kube_proxy = KubeProxy(workdir, enter, self.node_ip)
        self.policy: policy.PolicyController | None = None  # once the Node is registered
        self.started = False

    @property
    def cgroup_root(self) -> str:
        return f"/{cgroups.name(self.cid)}"

    def start(self, deadline: float) -> None:
        install()
        self.pause = images.pause(self.workdir / "images")
        self.toolbox = images.toolbox(self.workdir / "images")
        host.prepare()
        self.net.note("node", "real")
        self.started = True
        netns.create(self.cid, self.net.bridge, self.net.subnet, self.net.service_range)
        cgroups.create(self.cid)
        cni.write(
            self.containerd.cni_conf,
            self.cid,
            self.net.subnet,
            self.net.service_range,
            self.workdir / "cni" / "ipam",
        )
        self.containerd.start(deadline, sandbox_image=self.pause.name)
        self._record(self.containerd.component.process)
        for image in (self.pause, self.toolbox):
            self.containerd.import_image(image.archive)
        self.kubelet.start(
            self.control, self.cgroup_root, self.containerd.socket, self.net.service_ip(10)
        )
        assert self.kubelet.component is not None
        self._record(self.kubelet.component.process)
        path_dir = self.workdir / "kube-proxy-path"
        path_dir.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (path_dir / "nft").symlink_to(NFT)
        self.kube_proxy.start(self.control, f"{self.net.subnet}.0/24", path_dir)
        assert self.kube_proxy.component is not None
        self._record(self.kube_proxy.component.process)

    def enforce_policies(self, node_name: str) -> None:
        """Start kube-router's policy controller in the node's namespace: it reads the Node's
        InternalIP, so call it once the Node is registered."""
        self.policy = policy.PolicyController(
            policy.grant(self.control),
            node_name,
            self.net.service_range,
            self.workdir,
            netns=netns.name(self.cid),
        ).start()
        self._record(self.policy.process)

    def _record(self, process: subprocess.Popen[bytes] | None) -> None:
        assert process is not None
        self.net.started(process.pid, str(self.workdir))

    def failed(self) -> str | None:
        """Why a part of the node has exited, else None."""
        if self.containerd.component.exited() is not None:
            return f"containerd exited:\n{self.containerd.component.tail()}"
        process = self.policy.process if self.policy is not None else None
        if process is not None and process.poll() is not None:
            return f"kube-router exited {process.returncode}"
        return self.kubelet.failed() or self.kube_proxy.failed()

    def load_image(self, archive: Path) -> list[str]:
        """Import an image archive into the node's containerd; the names it holds."""
        return self.containerd.import_image(archive)

    def stop(self) -> None:
        if not self.started:
            return
        try:
            if self.policy is not None:
                self.policy.stop()
        finally:
            self.kubelet.stop()
            self.kube_proxy.stop()
        cgroups.remove(self.cid)  # the pods' processes: nothing restarts them now
        self.containerd.stop()
        left = host.remove(self.cid, self.workdir)
        self.started = False
        if left:
            raise RuntimeError(f"the real node left: {'; '.join(left)}")
