"""The store's state and kind columns, each an enum (posts and subscribers keep theirs
beside their tables: store/posts.py `PostState`, store/subscribers.py `Status`).

StrEnum: the stored values are these very strings, so no migration changes a row, and a
member compares equal to the text a row holds."""

from __future__ import annotations

import enum


class Intake(enum.StrEnum):
    """The `inbound.source` column: which front end took the message."""

    SMTP = "smtp"
    LMTP = "lmtp"  # behind Postfix (deploy/)
    IMAP = "imap"  # read from a mailbox: no SMTP client, no envelope of its own


class SpoolState(enum.StrEnum):
    """The `inbound.state` column (the stored values are these strings)."""

    NEW = "new"  # waiting for the worker
    DONE = "done"  # handled; its effects committed with this mark
    HELD = "held"  # kept for a later stage (a post waiting for approval or its time)
    FAILED = "failed"  # shunted after MAX_ATTEMPTS, kept with the error as evidence


class QueueState(enum.StrEnum):
    """The `outbound.state` column (the stored values are these strings)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"  # 5xx: permanent, recorded (design.md reliability promises)
    FAILED = "failed"  # 4xx or connection failures for longer than the retry window


class MessageKind(enum.StrEnum):
    """The `outbound_messages.kind` column: what a queued message is (an outage holds
    some kinds and lets others through: operations/outages.py)."""

    REPLY = "reply"  # an answer to a citizen or a sender (rate-limited per address)
    CONFIRM = "confirm"  # a confirmation request (double opt-in, a post's approval)
    FORWARD = "forward"  # an inquiry forwarded to the 情報管理者 (第5条(3))
    POST = "post"  # a post to subscribers
    DIGEST = "digest"  # the weekly bounce digest to the 情報管理者
    NOTICE = "notice"  # to staff: outage notices (第9条), alarms, registry sync reports
