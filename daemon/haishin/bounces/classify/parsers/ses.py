"""Amazon SES notifications (JSON, often wrapped in an SNS envelope whose "Message" is
the notification as a string): Bounce, Complaint and Delivery.

Only the JSON fields are read; the bounce type (Permanent/Transient) is not a reason, so
each recipient's status and diagnosticCode go to the reason table like any reply.
"""

from __future__ import annotations

import json
from typing import Any

from ..mail import Mail, reply_in, status_in
from ..model import Found


def _notification(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    if start < 0 or ("notificationType" not in text and "eventType" not in text):
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("Message")
    if isinstance(inner, str):  # the SNS envelope (its "Type": "Notification")
        try:
            data = json.loads(inner)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def _recipients(items: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get(key), str):
            out.append(item)
        elif isinstance(item, str):
            out.append({key: item})
    return out


def parse(mail: Mail) -> list[Found] | None:
    data = _notification(mail.text)
    if data is None:
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    found: list[Found] = []
    if kind == "Bounce":
        bounce = data.get("bounce") or {}
        sub = f"{bounce.get('bounceType', '')}/{bounce.get('bounceSubType', '')}"
        for r in _recipients(bounce.get("bouncedRecipients"), "emailAddress"):
            diagnostic = str(r.get("diagnosticCode") or "")
            status = str(r.get("status") or "") or status_in(diagnostic)
            found.append(
                Found(
                    r["emailAddress"],
                    status=status or None,
                    reply_code=reply_in(diagnostic.partition(";")[2] or diagnostic),
                    diagnostic=f"{diagnostic} ({sub})".strip(),
                    action=str(r.get("action") or "") or None,
                    rhost=str(bounce.get("remoteMtaIp") or "") or None,
                    # SES's own suppression list: it did not even try (Sisimai: suppressed)
                    hint="suspend" if "Suppressed" in sub else None,
                )
            )
    elif kind == "Complaint":
        complaint = data.get("complaint") or {}
        for r in _recipients(complaint.get("complainedRecipients"), "emailAddress"):
            feedback = complaint.get("complaintFeedbackType", "abuse")
            found.append(
                Found(r["emailAddress"], diagnostic=f"Feedback-Type: {feedback}", hint="feedback")
            )
    elif kind == "Delivery":
        delivery = data.get("delivery") or {}
        for r in _recipients(delivery.get("recipients"), "emailAddress"):
            found.append(Found(r["emailAddress"], diagnostic="delivered", hint="delivered"))
    return found
