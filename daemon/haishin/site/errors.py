"""How a site build fails on purpose."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RegistryInvalid


class SiteRegistryInvalid(RegistryInvalid):
    """The registry failed `haishin check`: no site is built from it (第7条).

    The message lists every problem as `path:line:col: message [key]`, the same lines
    `haishin check` prints, because the `pelican` command shows only the exception text.
    """

    exitcode = 1  # what `pelican` exits with (it reads `exitcode`, not `exit_code`)

    def __init__(self, problems: Sequence[object]) -> None:
        super().__init__(problems)
        lines = "\n".join(str(p) for p in problems)
        self.args = (
            f"登録情報（config/）に誤りがあるため、公開サイトを作成しませんでした"
            f"（{len(problems)} 件）:\n{lines}",
        )
