"""Pure core of the broker: value types and policies, no I/O (docs/house-style.md II.2)."""
