"""Inbound mail: SMTP/LMTP and IMAP front ends that store into the one spool, nothing more."""
