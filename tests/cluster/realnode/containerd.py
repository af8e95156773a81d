"""containerd 2.4 with runc, as the node's CRI runtime, everything it keeps in the workdir.

Where it differs from a production node's: its root, state, sockets, runc state (``Root``) and
shim sockets (``socket_dir``) are under the cluster's workdir, not /var/lib/containerd and
/run/containerd, so two clusters' containerds never meet; it runs in the node's network
namespace (``netns``), so the CNI plugins it calls wire pods to the node's bridge there, and its
CRI streaming server (exec, attach, port-forward) listens on the node's address, where the
kubelet in the host namespace reaches it. Also:

- ``restrict_oom_score_adj = true``: this machine's root lacks CAP_SYS_RESOURCE, so the -998 a
  sandbox gets (and -997 a Guaranteed container) cannot be set: runc fails every sandbox with
  "can't get final child's PID from pipe: EOF" without it (the spike's error 1);
- no NRI, no /opt/containerd, no CDI: nothing under /var/run/nri, /opt or /etc/cdi; a pod's
  loopback is brought up by containerd itself, not by the CNI ``loopback`` plugin (whose
  results libcni would cache in /var/lib/cni under a name without the cluster's);
- ``SystemdCgroup = false``: cgroupfs, as the kubelet (PID 1 is not systemd here);
- the sandbox image is pinned to our ``localhost/pause`` (``images``): never pulled.

Images arrive by ``ctr images import`` only (``import_image``): an OCI layout archive or a
docker-archive (what ``podman save`` makes).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.cluster import binaries
from tests.cluster.controlplane import Component

RUNC = Path("/usr/sbin/runc")  # Debian package runc
CNI_BIN = Path("/usr/lib/cni")  # Debian package containernetworking-plugins
NAMESPACE = "k8s.io"  # the containerd namespace the CRI works in
SOCKET_LIMIT = 100  # a unix socket path must fit in 108 bytes; shim sockets add 65

CONFIG = """\
version = 4
root = '{root}'
state = '{state}'
temp = '{temp}'
imports = []
disabled_plugins = [
  'io.containerd.nri.v1.nri',
  'io.containerd.internal.v1.opt',
  'io.containerd.image-verifier.v1.bindir',
]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = '{socket}'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '{socket}.ttrpc'
  [plugins.'io.containerd.server.v1.debug']
    address = ''
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '{shim_sockets}'

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause}'

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    enable_criu = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{runc}'
          Root = '{runc_root}'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{cni_bin}']
      conf_dir = '{cni_conf}'
      max_conf_num = 1
      use_internal_loopback = true

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '{stream_address}'
    stream_server_port = '0'
"""


class Containerd:
    """containerd for one cluster: ``start`` in the node's netns, ``import_image``, ``stop``."""

    def __init__(self, workdir: Path, netns_argv: list[str], node_ip: str) -> None:
        self.folder = workdir / "containerd"
        self.socket = self.folder / "containerd.sock"
        self.shim_sockets = workdir / "s"
        self.runc_root = self.folder / "runc"
        self.cni_conf = workdir / "cni" / "net.d"
        self.config = self.folder / "config.toml"
        self.node_ip, self.netns_argv = node_ip, netns_argv
        self.component = Component(
            "containerd",
            [*netns_argv, str(binaries.BIN / "containerd"), "--config", str(self.config)],
            workdir / "logs" / "containerd.log",
        )

    def write_config(self, sandbox_image: str) -> None:
        longest = str(self.shim_sockets / ("0" * 64))
        if len(longest) > SOCKET_LIMIT:
            raise RuntimeError(
                f"the cluster's workdir path is too long for containerd's shim sockets "
                f"({longest!r} is {len(longest)} bytes, at most {SOCKET_LIMIT}): use a shorter one"
            )
        for folder in (self.folder, self.shim_sockets, self.cni_conf):
            folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            CONFIG.format(
                root=self.folder / "root",
                state=self.folder / "state",
                temp=self.folder / "tmp",
                socket=self.socket,
                shim_sockets=self.shim_sockets,
                pause=sandbox_image,
                runc=RUNC,
                runc_root=self.runc_root,
                cni_bin=CNI_BIN,
                cni_conf=self.cni_conf,
                stream_address=self.node_ip,
            )
        )
        (self.folder / "tmp").mkdir(exist_ok=True)

    def start(self, deadline: float, sandbox_image: str) -> None:
        self.write_config(sandbox_image)
        self.component.start()
        while not self._answers():
            if self.component.exited() is not None:
                raise RuntimeError(
                    f"containerd exited with {self.component.exited()}:\n{self.component.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not come up:\n{self.component.tail()}")
            time.sleep(0.1)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries.BIN / "ctr"), "--address", str(self.socket), "-n", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _answers(self) -> bool:
        return self.socket.exists() and self.ctr("version", timeout=10).returncode == 0

    def import_image(self, archive: Path) -> list[str]:
        """Import an image archive (OCI layout or docker-archive); the names it brought."""
        done = self.ctr("images", "import", str(archive), timeout=600)  # unpacks too
        if done.returncode != 0:
            raise RuntimeError(f"ctr images import {archive}: {done.stderr.strip()}")
        # a line per image: "<name>  <tab>saved<tab>"
        return [line.split()[0] for line in done.stdout.splitlines() if "\tsaved" in line]

    def images(self) -> list[str]:
        done = self.ctr("images", "list", "--quiet")
        return done.stdout.split()

    def stop(self) -> None:
        self.component.stop(grace=10)
