"""Every option, declared once: declaration -> argv -> checked values, and every rule between
options in one module.

- ``fields``: how an option is declared (a dataclass field with its flag, help and converter).
- ``converters``: what each option accepts, up to the bounds one process and a run hold; the one
  line a refusal prints (``errors.ConfigError``).
- ``load``: the host and the load model's options; ``config``: ``RunConfig``, all run options.
- ``role``: the Gaggle-mode options (which role a process plays, how it reaches the others).
- ``conflicts``: the rules between options (``--users`` with ``--test-plan``…), in one place.
- ``table``: every option's record (flag, key, group), read by argv, README and the operator.
- ``argv``: the command line (argparse) built from the table.
- ``_generated_default``: ``gaggle.Default``'s keys, written by ``make options``.
"""

from gaggle.options._generated_default import Default
from gaggle.options.argv import add_run_options, given_options, parse_run_args, split_gaggle_options
from gaggle.options.config import CONVERTERS, RUN_OPTIONS, RunConfig, build_config
from gaggle.options.conflicts import check_shape_alone, check_shares, role_from, share_refused
from gaggle.options.converters import (
    ARRIVALS_PER_RUN,
    ARRIVALS_PER_RUN_WHY,
    HTTP_CLIENTS,
    JOIN_TIMEOUT_MAX,
    MAX_WORKERS,
    REPORT_FORMATS,
    SECONDS_MAX,
    USERS_PER_RUN,
    USERS_PER_RUN_WHY,
    WORKERS_WHY,
    beyond,
    most_text,
    parse_duration,
    parse_stages,
    plan_text,
    rate,
    validate_host,
)
from gaggle.options.role import Role, RoleKind
from gaggle.options.table import OPERATOR_KEYS, OPTIONS_BY_NAME, PER_WORKER_KEYS, as_flags

__all__ = [
    "ARRIVALS_PER_RUN",
    "ARRIVALS_PER_RUN_WHY",
    "CONVERTERS",
    "HTTP_CLIENTS",
    "JOIN_TIMEOUT_MAX",
    "MAX_WORKERS",
    "OPERATOR_KEYS",
    "OPTIONS_BY_NAME",
    "PER_WORKER_KEYS",
    "REPORT_FORMATS",
    "RUN_OPTIONS",
    "SECONDS_MAX",
    "USERS_PER_RUN",
    "USERS_PER_RUN_WHY",
    "WORKERS_WHY",
    "Default",
    "Role",
    "RoleKind",
    "RunConfig",
    "add_run_options",
    "as_flags",
    "beyond",
    "build_config",
    "check_shape_alone",
    "check_shares",
    "given_options",
    "most_text",
    "parse_duration",
    "parse_run_args",
    "parse_stages",
    "plan_text",
    "rate",
    "role_from",
    "share_refused",
    "split_gaggle_options",
    "validate_host",
]
