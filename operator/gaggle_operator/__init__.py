"""The LoadTest operator (``gaggle_operator``): a kopf operator that runs gaggles in Kubernetes.

A client of the engine: it reads LoadTests with the engine's own option rules and runs the
manager pod's process on the engine's manager; the engine never imports it (import-linter).
"""
