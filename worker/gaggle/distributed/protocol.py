"""What a manager and its workers agree on besides gaggle.proto: the protocol's version and the
heartbeat's rhythm. Both sides import these, so they cannot drift apart."""

# 3: columnar tables (1 sent rows with repeated bucket fields, 2 rows with bucket bytes).
# 4: Adjust (a manager's plan starts and stops users mid-run; a worker of 3 would ignore it).
# 5: the open model (Start's arrival_first/stride, Delta's arrivals_dropped and schedule_lag).
# 6: Reschedule (an open model's schedule changed mid-run) and Start's timetable/joined.
# 7: compact tables (columns at the narrowest width; keys named once a stream, then ids).
PROTOCOL_VERSION = 7
HEARTBEAT_INTERVAL = 1.0  # seconds between heartbeats, each way
WORKER_SILENCE = 3.0  # seconds without a word from a worker: the manager counts it lost
MANAGER_SILENCE = 4.0  # seconds without a word from the manager: it is gone (e.g. a partition)
