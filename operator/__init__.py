"""The LoadTest operator (``gaggle.operator``): a kopf operator that runs gaggles in Kubernetes.

It arrives with issue 5; it may import the engine's config model, never the other way round.
"""
