"""Implementations of the sync service's ports that do I/O."""
