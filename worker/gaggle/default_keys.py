"""``Default``: the keys of ``Attack.set_default``, one per RunConfig field.

Written by tools/generate_options.py (`make options`) from RunConfig's fields; do not
edit (a test fails when it differs).
"""

import enum


class Default(enum.Enum):
    """Keys for ``Attack.set_default`` (the seed's GooseDefault); values are RunConfig fields."""

    HOST = "host"
    USERS = "users"
    HATCH_RATE = "hatch_rate"
    RUN_TIME = "run_time"
    TEST_PLAN = "test_plan"
    ITERATIONS = "iterations"
    ARRIVAL_RATE = "arrival_rate"
    MAX_USERS = "max_users"
    LOG_LEVEL = "log_level"
    LOG_FILE = "log_file"
    VERBOSE = "verbose"
    RUNNING_METRICS = "running_metrics"
    NO_RESET_METRICS = "no_reset_metrics"
    NO_METRICS = "no_metrics"
    NO_TASK_METRICS = "no_task_metrics"
    ONLY_SUMMARY = "only_summary"
    NO_LIVE = "no_live"
    STATUS_EVERY = "status_every"
    REQUESTS_FILE = "requests_file"
    REQUESTS_FORMAT = "requests_format"
    DEBUG_FILE = "debug_file"
    DEBUG_FORMAT = "debug_format"
    NO_DEBUG_BODY = "no_debug_body"
    STATUS_CODES = "status_codes"
    LATENCY = "latency"
    THROTTLE_REQUESTS = "throttle_requests"
    STICKY_FOLLOW = "sticky_follow"
    SCHEDULER = "scheduler"
    HTTP_CLIENT = "http_client"
    METRICS_BIND = "metrics_bind"
    CONTROL_TOKEN = "control_token"
    WEB = "web"
    REPORT_FILE = "report_file"
    THRESHOLDS = "thresholds"
