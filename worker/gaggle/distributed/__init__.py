"""Gaggle mode: one manager and N workers of the same load test, over gRPC (``gaggle.wire``)."""
