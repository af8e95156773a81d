"""``python -m gaggle.operator manage ...``: the same as ``gaggle-operator``."""

from gaggle.operator.cli import entry

entry()
