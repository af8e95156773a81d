"""Write what the option table declares into the files that must spell it out.

    python tools/generate_options.py          # rewrite them (what `make options` runs)
    python tools/generate_options.py --check  # exit 1 naming each file that differs (a test)

- ``worker/gaggle/default_keys.py``: the ``Default`` enum, one member per RunConfig field. It is
  written out rather than built at import so that type checkers see its members: ``Default`` is
  public and gaggle is typed (``Default.HOST`` must type-check in a user's load test).
- README.md, between its ``options`` markers: the tables of ``gaggle run``'s options, from each
  option's flags, metavar and README text (or help), grouped and ordered as ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "worker"))  # the tree's own gaggle, not an installed one

from gaggle.config import RUN_OPTIONS  # noqa: E402
from gaggle.option import Option  # noqa: E402
from gaggle.option_table import COMMAND_OPTIONS  # noqa: E402
from gaggle.role_options import ROLE_OPTIONS  # noqa: E402

DEFAULT_KEYS = Path("worker/gaggle/default_keys.py")
README = Path("README.md")
BEGIN = (
    "<!-- options: written by `make options` from the option table (worker/gaggle/config.py, "
    "role_options.py); edit the declarations there, a test fails when this differs -->"
)
END = "<!-- end of options -->"


def default_keys() -> str:
    members = "".join(f'    {o.name.upper()} = "{o.name}"\n' for o in RUN_OPTIONS)
    return (
        '"""``Default``: the keys of ``Attack.set_default``, one per RunConfig field.\n\n'
        "Written by tools/generate_options.py (`make options`) from RunConfig's fields; do not\n"
        'edit (a test fails when it differs).\n"""\n\n'
        "import enum\n\n\n"
        "class Default(enum.Enum):\n"
        '    """Keys for ``Attack.set_default`` (the seed\'s GooseDefault); values are RunConfig'
        ' fields."""\n\n' + members
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(options: Iterable[Option]) -> str:
    """A Markdown table of the options, grouped as ``--help`` groups them."""
    groups: dict[str, list[Option]] = {}
    for entry in options:
        groups.setdefault(entry.group, []).append(entry)
    rows = ["| option | meaning |", "| --- | --- |"]
    for entry in (entry for group in groups.values() for entry in group):
        usage = ", ".join(entry.flags)
        if entry.shown_metavar:
            usage += f" {entry.shown_metavar}"
        rows.append(f"| `{_cell(usage)}` | {_cell(entry.doc or entry.help)} |")
    return "\n".join(rows) + "\n"


def readme(current: str) -> str:
    """README with its options section written from the table (the rest as it is)."""
    before, found, rest = current.partition(BEGIN + "\n\n")
    _, found_end, after = rest.partition("\n" + END)
    if not (found and found_end):
        raise SystemExit(f"{README}: the lines {BEGIN!r} and {END!r} mark where the tables go")
    gaggle_mode = "Gaggle mode ([below](#gaggle-mode-one-manager-n-workers)):\n\n"
    body = table([*RUN_OPTIONS, *COMMAND_OPTIONS]) + "\n" + gaggle_mode + table(ROLE_OPTIONS)
    # blank lines around the tables: a Markdown table ends at one, not at an HTML comment
    return before + BEGIN + "\n\n" + body + "\n" + END + after


def outputs(root: Path) -> dict[Path, str]:
    """Each generated file's path and the text it should have."""
    return {
        DEFAULT_KEYS: default_keys(),
        README: readme((root / README).read_text(encoding="utf-8")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on drift")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to write or check")
    args = parser.parse_args()
    drifted = []
    for path, text in outputs(args.root).items():
        file = args.root / path
        if file.exists() and file.read_text(encoding="utf-8") == text:
            continue
        drifted.append(str(path))
        if not args.check:
            file.write_text(text, encoding="utf-8")
    if drifted:
        verb = "differs from the option table" if args.check else "written"
        print("\n".join(f"{name}: {verb}" for name in drifted), file=sys.stderr)
        if args.check:
            print("run `make options`", file=sys.stderr)
    return 1 if drifted and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
