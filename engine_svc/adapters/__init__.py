"""Implementations of the engine's ports that do I/O: gRPC clients of the broker and sync."""
