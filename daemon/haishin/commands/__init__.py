"""Subscribe, unsubscribe, confirm, help, forwards: double opt-in with Japanese replies.

Each command works inside the caller's transaction (the spool row's, or a web request's)
and returns an `Outcome`; the replies it queues commit with it, so nothing is sent for a
change that did not happen, and nothing is sent twice for one that did.
"""
