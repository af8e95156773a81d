"""Reporters: console tables and the request/debug logs. They read records and snapshots only."""
