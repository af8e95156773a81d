"""Generated from ``proto/gaggle/wire/gaggle.proto`` by ``make proto``: do not edit by hand.

A test regenerates the stubs and fails when these files drift from the ``.proto``.
"""
