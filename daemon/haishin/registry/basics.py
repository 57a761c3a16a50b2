"""The registry's shared field types: an e-mail address (validated, normalised), a time
(Japan time when written without an offset), a non-empty text, the role holders the rules
name, and the strict base every model of config/ derives from (an unknown key is a
finding, not a value silently ignored).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ..clock import JST


def _address(value: str) -> str:
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email",
            "メールアドレスの形式が正しくありません: {address}（{reason}）",
            {"address": value, "reason": str(exc)},
        ) from None
    return info.normalized


YEARS = range(2000, 3000)
"""The years a time may name. Every use converts it to UTC or Japan time (the daemon's
clock, the notices, `outage preview`); at the edge of what Python holds (9999-12-31 at
-09:00, 0001-01-01 at +09:00) that overflows, so the slip is refused here, on its line,
rather than as a traceback after the merge."""


def _aware(value: dt.datetime) -> dt.datetime:
    # The service runs in Japan: a time written without an offset is Japan time.
    value = value if value.tzinfo else value.replace(tzinfo=JST)
    if value.year not in YEARS:
        raise PydanticCustomError(
            "timestamp_range",
            "日時は {first}年から{last}年までで書いてください（書かれている値: {value}）",
            {"first": YEARS[0], "last": YEARS[-1], "value": value.isoformat(sep=" ")},
        )
    return value


Address = Annotated[str, AfterValidator(_address)]
Timestamp = Annotated[dt.datetime, AfterValidator(_aware)]
Text = Annotated[str, Field(min_length=1)]


class Role(enum.StrEnum):
    """The role holders named by the rules."""

    GENERAL_MANAGER = "general_manager"  # 統括管理者 (第3条)
    CLOUD_ADMIN = "cloud_admin"  # クラウドサービス管理者 (第4条)
    CMS_ADMIN = "cms_admin"  # 防災CMSを管理する者 (第9条)


ROLE_NAMES = {
    Role.GENERAL_MANAGER: "統括管理者",
    Role.CLOUD_ADMIN: "クラウドサービス管理者",
    Role.CMS_ADMIN: "防災CMS管理者",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
