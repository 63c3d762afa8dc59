"""The copy engine: copy configurations, the signal inbox and order intents.

For every signal and every follower it filters, sizes and risk-checks the copy, writes an
order intent with a deterministic client order id before any broker call, then places it and
resolves unknown outcomes by looking the order up.
"""
