"""The registry of channels, departments, applications and outages (config/).

It imports nothing of the daemon, so the site build and the CLI can use it alone.
"""

from .load import Located, Registry, load
from .problems import Pos, Problem, Severity
from .state import ChannelState, State, channel_state, channel_states, outages_in_force
from .validate import check, load_valid

__all__ = [
    "ChannelState",
    "Located",
    "Pos",
    "Problem",
    "Registry",
    "Severity",
    "State",
    "channel_state",
    "channel_states",
    "check",
    "load",
    "load_valid",
    "outages_in_force",
]
