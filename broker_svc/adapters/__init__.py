"""Implementations of the broker's ports that do I/O: ccxt venues and the paper venue."""
