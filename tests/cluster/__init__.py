"""A real Kubernetes cluster for the tests: the real control plane, our node.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and CoreDNS are the real
programs, built from their Go modules once per machine (``binaries``). The one home-made part is
the node, since no container runtime runs here: a kubelet stand-in that runs pods as processes in
network namespaces (``kubelet``, ``node``, ``pod``, ``volumes``, ``network``, ``endpoint``), and
a service proxy that does kube-proxy's job for ClusterIPs (``services``). What each part does,
and where it is not the real thing, is said in its module's docstring:

- ``cluster``: ``Cluster``, everything together; ``fixtures``: the pytest fixtures.
- ``controlplane``, ``pki``: the real components, configured like a kubeadm cluster.
- ``dns``: CoreDNS with the kubernetes plugin behind the ``kube-dns`` Service.
- ``client``: the small asyncio API client the node and the proxy use.

By hand: ``python -m tests.cluster --kubeconfig /tmp/kc`` (until Ctrl-C).
"""
