"""``python -m gaggle_operator manage ...``: the same as ``gaggle-operator``."""

from gaggle_operator.cli import entry

entry()
