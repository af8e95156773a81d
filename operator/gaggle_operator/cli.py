"""``gaggle-operator``: the operator image's second command (``gaggle`` is the first).

``gaggle-operator run --all-namespaces`` is the operator (deploy/operator.yaml): kopf behind a
Lease (run.py). ``gaggle-operator manage ...`` runs in a LoadTest's manager pod.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = (
    "usage: gaggle-operator run (--all-namespaces | --namespace NS ...) [--health-port PORT] ...\n"
    "       gaggle-operator manage --loadtest NAME --namespace NS [--abort-on-fail] -- run ..."
)
HELP = (
    "commands:\n"
    "  run     the operator: watch LoadTests and run them (kopf, behind a Lease)\n"
    "  manage  in a LoadTest's manager pod: run the gaggle manager and write its status\n"
    "\n"
    "gaggle-operator COMMAND --help tells a command's options."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        from gaggle_operator.run import main as run  # kopf: only when operating

        return run(args[1:])
    if args[:1] == ["manage"]:
        from gaggle_operator.manage import main as manage  # kubernetes: only when managing

        return manage(args[1:])
    if args[:1] in (["--help"], ["-h"]):  # asked for: on stdout, and not an error
        print(f"{USAGE}\n\n{HELP}")
        return 0
    print(USAGE, file=sys.stderr)
    return 2


def entry() -> None:
    raise SystemExit(main())
