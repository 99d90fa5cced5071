"""Real ViZDoom environments, PPO agents, data collection and keyboard play."""

from agents.doom_env import DoomEnv, make_env
from agents.scenarios import DEFAULT_ENV, SCENARIOS, Scenario, UnknownEnvError, get_scenario

__all__ = [
    "DEFAULT_ENV",
    "SCENARIOS",
    "DoomEnv",
    "Scenario",
    "UnknownEnvError",
    "get_scenario",
    "make_env",
]
