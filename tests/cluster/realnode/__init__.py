"""The test cluster's node: kubelet v1.37 + containerd 2.4 + runc + the CNI bridge + kube-proxy
(nftables) + kube-router's policy controller, on this machine, beside the control plane
(``cluster.Cluster``). ``NODE`` is its name.

Each module is one part, and says where it differs from a production node:

- ``node``: ``RealNode``, the parts together: start in order, stop bounded and idempotent;
- ``netns``: the node's own network namespace ``gn<id>`` joined to the cluster's bridge (why:
  kube-proxy's table name is fixed, so each cluster's node has its own netfilter);
- ``cni``: the bridge + host-local conflist (no masquerade, no default route in pods);
- ``containerd``: config (everything under the workdir), process, ``ctr images import``;
- ``images``: the pause and toolbox images, OCI archives made from Debian's static binaries;
- ``kubelet``, ``kube_proxy``: their configuration, credentials from the cluster's CA, process;
- ``policy``: kube-router's NetworkPolicy controller, alone, in the node's namespace;
- ``cgroups``: the kubelet's cgroup root ``/gaggle-<id>`` in every (v1) hierarchy;
- ``host``: what the node touches outside its workdir, removed at stop or by a later cluster's
  sweep.
"""

from tests.cluster.realnode.kubelet import NODE
from tests.cluster.realnode.node import RealNode

__all__ = ["NODE", "RealNode"]
