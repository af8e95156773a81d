"""Gaggle mode: one manager and N workers of the same load test, over gRPC (``gaggle.wire``).

- ``processes``: ``--processes N`` (a manager and N workers on this machine).
- ``manager`` / ``worker``: the two roles; ``servicer``: the manager's end of the workers'
  streams; ``manager_link``: a worker's end of its stream to the manager.
- ``admission``: the checks a worker passes to join (version, hash, token).
- ``merged_tally``: the manager's totals, folded from workers' deltas; ``delta_checks``: whether
  a delta can be true; ``delta_tables``: a delta decoded once for both (numpy: these three only).
- ``worker_crowd``: the workers as the crowd a plan drives; ``shares``: each worker's share.
- ``codec``: the wire format of deltas (encoded, and checked) and of timetable segments;
  ``rules``: the load test's hash.
- ``security``: TLS and tokens; ``protocol``: the version and timings both sides agree on.

Which role a process plays is read from its flags with the other options
(``options.conflicts.role_from`` → ``options.role.Role``).
"""
