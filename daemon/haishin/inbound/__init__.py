"""Front ends: accept mail into the spool and do no other work (style.md 1)."""
