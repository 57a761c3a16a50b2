"""Delivery: the outbound message, fan-out, and what comes back (bounces)."""
