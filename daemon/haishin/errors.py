"""The one small exception hierarchy; the edges (CLI, SMTP, site build) map it.

Expected outcomes (a refused post, an expired token) are results, not exceptions.
"""

from collections.abc import Sequence


class HaishinError(Exception):
    """Base of every error haishin raises on purpose."""

    exit_code = 2


class RegistryInvalid(HaishinError):
    """The registry in config/ did not validate; `problems` says where and why."""

    exit_code = 1

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = problems
        super().__init__(f"registry has {len(problems)} problem(s)")


class RegistryEditError(HaishinError):
    """An administrator's edit (approve, reject) could not be applied."""

    exit_code = 1
