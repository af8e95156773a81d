"""The two ports a gaggle listens on by default, named once: options, help, Role and the
operator's Services and Pods all read them from here."""

GRPC_PORT = 5115  # the manager's gRPC port, which workers join (--manager-bind-port/--manager-port)
METRICS_PORT = 9646  # Prometheus /metrics and /summary (--metrics-bind; a manager's default)
