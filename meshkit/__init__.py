"""Shared runtime of the copy-trading mesh: server bootstrap, errors, storage, codecs, tests."""
