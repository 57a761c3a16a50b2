"""How a site build fails on purpose."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RegistryInvalid


class SiteRegistryInvalid(RegistryInvalid):
    """The registry failed `haishin check`: no site is built from it (第7条).

    `problems` are the lines `haishin check` prints (`path:line:col: message [key]`).
    """

    exitcode = 1  # what `pelican` exits with (it reads `exitcode`, not `exit_code`)

    def __init__(self, problems: Sequence[object]) -> None:
        super().__init__(problems)
        self.args = (
            f"登録情報（config/）に誤りが {len(problems)} 件あるため、"
            "公開サイトを作成しませんでした（haishin check で確認できます）",
        )
