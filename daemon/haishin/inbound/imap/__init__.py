"""IMAP ingestion (`--imap URL`): `settings` (the URL, the password, the knobs, read once at
the edge) and `session` (the ingester: a worker thread that takes each message into the
spool once, then marks it on the server)."""
