"""The ``gaggle`` command: reads argv, loads the test file, and runs the role it names
(standalone, manager, worker, or ``--processes N``); also ``gaggle demo-site``.

- ``commands``: the subcommands and how a run command becomes a role.
- ``loader``: the test file imported, its task sets and load shape found.
- ``demo_site``: the demo shop ``make demo`` loads.
"""

from gaggle.cli.commands import RunCommand, build_parser, entry, main, read_run_command

__all__ = ["RunCommand", "build_parser", "entry", "main", "read_run_command"]
