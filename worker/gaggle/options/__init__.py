"""Every option, declared once: declaration -> argv -> checked values, and every rule between
options in one module.

- ``fields``: how an option is declared (a dataclass field with its flag, help and converter).
- ``converters``: what each option accepts; the one line a refusal prints (``errors.ConfigError``).
- ``load``: the host and the load model's options; ``config``: ``RunConfig``, all run options.
- ``role``: the Gaggle-mode options (which role a process plays, how it reaches the others).
- ``conflicts``: the rules between options (``--users`` with ``--test-plan``…), in one place.
- ``table``: every option's record (flag, key, group), read by argv, README and the operator.
- ``argv``: the command line (argparse) built from the table.
- ``_generated_default``: ``gaggle.Default``'s keys, written by ``make options``.
"""
