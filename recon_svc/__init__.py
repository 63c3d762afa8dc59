"""Reconciliation service: proves that every leader signal has one terminal outcome per follower."""
