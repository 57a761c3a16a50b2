"""Reasons about the session and the message's form: TLS, policy, RFC 5322 compliance,
content, command syntax; and last the vague "rejected", which only a reply saying nothing
more specific ends at."""

from __future__ import annotations

from .row import R, Reason

ROWS: tuple[Reason, ...] = (
    Reason(
        "securityerror",
        R,
        ("X.7.4", "X.7.5", "X.7.7", "X.7.8", "X.7.9", "X.7.10", "X.7.11"),
        (
            r"starttls",
            r"\btls\b",
            r"encryption (?:required|needed)",
            r"authentication required",
            r"must (?:issue|authenticate)",
            r"certificate",
        ),
    ),
    Reason(
        "policyviolation",
        R,
        (),
        (
            r"polic(?:y|ies)",
            r"violat",
            r"prohibited",
            r"not permitted",
            r"forbidden",
            r"not allowed",
            r"terms of service",
        ),
    ),
    Reason(
        "notcompliantrfc",
        R,
        (),
        (
            r"rfc ?5322",
            r"rfc ?2822",
            r"rfc ?822",
            r"not (?:rfc[- ]?)?compliant",
            r"duplicate (?:header|message-id)",
            r"multiple (?:from|to|subject|date|message-id)",
            r"missing (?:a )?(?:required )?(?:header|date|message-id|from)",
        ),
    ),
    Reason(
        "contenterror",
        R,
        ("X.6.0", "X.6.1", "X.6.2", "X.6.3", "X.6.4", "X.6.5"),
        (
            r"content (?:rejected|refused|error|not)",
            r"message content",
            r"due to content",
            r"header error",
            r"illegal (?:character|header)",
            r"invalid (?:mime|header|character)",
            r"attachment",
            r"8-?bit",
            r"encoding",
        ),
    ),
    Reason(
        "syntaxerror",
        R,
        ("X.5.0", "X.5.1", "X.5.2", "X.5.4", "X.5.5"),
        (
            r"syntax error",
            r"command (?:not )?(?:unrecognized|recognized)",
            r"unrecognized command",
            r"bad sequence",
            r"invalid command",
        ),
    ),
    Reason(
        "rejected",
        R,
        ("X.1.7", "X.1.8", "X.7.1", "X.7.0"),
        (
            r"sender (?:address )?(?:rejected|refused|denied|verify failed|invalid|not allowed|"
            r"unknown|domain)",
            r"(?:domain|address) of sender",
            r"envelope sender",
            r"invalid sender",
            r"sender is",
            r"mail from",
            r"rejected",
            r"refused",
            r"denied",
            r"not accepted",
            r"reject",
            r"拒否",
        ),
    ),
)
