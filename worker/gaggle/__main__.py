from gaggle.cli import entry

entry()
