"""A real Kubernetes cluster for the tests, on this machine: every part is the real program.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, CoreDNS, the kubelet,
kube-proxy, containerd and kube-router are built from their Go modules once per machine
(``binaries``); runc and the CNI plugins are Debian's. Where a part is configured unlike a
production cluster's (to share the machine with other clusters and leave nothing behind), its
module's docstring says so:

- ``cluster``: ``Cluster``, everything together; ``fixtures``: the pytest fixtures;
- ``controlplane``, ``pki``: the control plane, configured like a kubeadm cluster's;
- ``dns``: CoreDNS with the kubernetes plugin behind the ``kube-dns`` Service;
- ``network``: the address ranges, the bridge where the host meets the pods, the record of what
  a cluster made (and the sweep of a killed one's leftovers);
- ``realnode``: the node: kubelet, containerd + runc, the CNI bridge, kube-proxy and kube-router's
  policy controller, in a network namespace of its own; the pause and toolbox images.

By hand: ``python -m tests.cluster --kubeconfig /tmp/kc`` (until Ctrl-C).
"""
