"""Pure core of the engine: settings, sizing, the risk gate, return correlations, the copy
decision and the intent state machine.

Nothing here does I/O or imports grpc, a database driver or generated code.
"""
