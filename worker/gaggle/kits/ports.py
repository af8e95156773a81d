"""The two ports a gaggle listens on by default, named once (options, help, Role and the
operator's Services and Pods all read them from here), and how a listening address is written:
``HOST:PORT`` with an IPv6 literal in brackets (``[::1]:9646``), as URLs and gRPC write it.

``::`` (or an empty host) means every address of both families, as Go's ``net.Listen`` reads
``[::]:port``: on an IPv6-only cluster a pod's address is v6, so ``0.0.0.0`` (IPv4 only) would
leave the manager unreachable there (shared/reviews/operator-on-a-real-cluster.md, finding 22)."""

import ipaddress
import socket

GRPC_PORT = 5115  # the manager's gRPC port, which workers join (--manager-bind-port/--manager-port)
METRICS_PORT = 9646  # Prometheus /metrics and /summary (--metrics-bind; a manager's default)
EVERY_ADDRESS = "::"


def split_host_port(text: str) -> tuple[str, str]:
    """``[::1]:80`` → ``("::1", "80")``, ``h:80`` → ``("h", "80")``, ``:80`` → ``("", "80")``."""
    host, _, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def every_address_socket(port: int) -> socket.socket:
    """One listening TCP socket on every address of both families (one port, even for port 0),
    or on every IPv4 address where the kernel has no IPv6. Why not asyncio's host=None: that
    binds a socket per family, each with its own port when the port is 0."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:  # no IPv6 in this kernel
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address: tuple[str, int] = ("0.0.0.0", port)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = (EVERY_ADDRESS, port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (a manager without a token, the control API)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
