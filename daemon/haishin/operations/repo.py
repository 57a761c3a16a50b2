"""Where the registry folder stands inside its git repository (`sync`, `plan`).

`--config` names the folder inside `--repo`: `haishin sync --repo checkout --config config`
reads checkout/config whatever the working directory. A path that already reaches into
the repository from the working directory (checkout/config) or an absolute one inside it
is accepted too, so units written either way keep working.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import HaishinError


class RepoPathError(HaishinError):
    exit_code = 2


def registry_in(repo: Path, config: Path) -> Path:
    """The registry folder as a path relative to the repository's top."""
    top = repo.resolve()
    if not config.is_absolute() and (top / config).is_dir():
        return Path(*(top / config).resolve().relative_to(top).parts)
    try:
        return config.resolve().relative_to(top)
    except ValueError:
        raise RepoPathError(
            f"登録情報のフォルダ {config} がリポジトリ {repo} の中にありません"
            "（--config はリポジトリの中のフォルダ名で指定してください。例: --config config）"
        ) from None
