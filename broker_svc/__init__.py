"""The broker: the only process that talks to exchanges (accounts, credentials, orders)."""
