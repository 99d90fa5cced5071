"""The ViZDoom scenarios this project supports, each with a small human-readable action set.

A scenario's actions are combinations of the buttons its ``.cfg`` file makes available. Every
action is a named set of buttons, so keyboard play can map held keys to buttons and then find
the action that presses exactly those (see ``agents.play.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ENV = "health_gathering"


@dataclass(frozen=True)
class Scenario:
    """One ViZDoom scenario: its config file, buttons, and the discrete actions we expose.

    ``variables`` are game variables recorded besides those its config makes available (the
    world model carries them as state); ``kill_reward`` is the reward its map script gives per
    kill, which no config file states (the dream pays it per dreamed kill)."""

    name: str
    config: str
    buttons: tuple[str, ...]
    actions: tuple[tuple[str, tuple[str, ...]], ...]
    variables: tuple[str, ...] = ()
    kill_reward: float = 0.0

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.actions)

    def button_vector(self, action: int) -> list[int]:
        """The 0/1 button vector that ViZDoom's ``make_action`` takes for ``action``."""
        pressed = self.actions[action][1]
        return [int(b in pressed) for b in self.buttons]


_MOVE_TURN = ("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD")
_MOVE_TURN_ACTIONS = (
    ("noop", ()),
    ("forward", ("MOVE_FORWARD",)),
    ("turn_left", ("TURN_LEFT",)),
    ("turn_right", ("TURN_RIGHT",)),
    ("forward_left", ("MOVE_FORWARD", "TURN_LEFT")),
    ("forward_right", ("MOVE_FORWARD", "TURN_RIGHT")),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("health_gathering", "health_gathering.cfg", _MOVE_TURN, _MOVE_TURN_ACTIONS),
        Scenario(
            "health_gathering_supreme",
            "health_gathering_supreme.cfg",
            _MOVE_TURN,
            _MOVE_TURN_ACTIONS,
        ),
        Scenario(
            "take_cover",
            "take_cover.cfg",
            ("MOVE_LEFT", "MOVE_RIGHT"),
            (("noop", ()), ("move_left", ("MOVE_LEFT",)), ("move_right", ("MOVE_RIGHT",))),
        ),
        Scenario(
            "defend_the_center",
            "defend_the_center.cfg",
            ("TURN_LEFT", "TURN_RIGHT", "ATTACK"),
            (
                ("noop", ()),
                ("turn_left", ("TURN_LEFT",)),
                ("turn_right", ("TURN_RIGHT",)),
                ("attack", ("ATTACK",)),
                ("attack_left", ("ATTACK", "TURN_LEFT")),
                ("attack_right", ("ATTACK", "TURN_RIGHT")),
            ),
            variables=("KILLCOUNT",),
            kill_reward=1.0,  # defend_the_center.acs: +1 per monster killed
        ),
        Scenario(
            "basic",
            "basic.cfg",
            ("MOVE_LEFT", "MOVE_RIGHT", "ATTACK"),
            (
                ("noop", ()),
                ("move_left", ("MOVE_LEFT",)),
                ("move_right", ("MOVE_RIGHT",)),
                ("attack", ("ATTACK",)),
            ),
        ),
        Scenario(
            "deadly_corridor",
            "deadly_corridor.cfg",
            (
                "MOVE_LEFT",
                "MOVE_RIGHT",
                "ATTACK",
                "MOVE_FORWARD",
                "MOVE_BACKWARD",
                "TURN_LEFT",
                "TURN_RIGHT",
            ),
            (
                ("noop", ()),
                ("forward", ("MOVE_FORWARD",)),
                ("backward", ("MOVE_BACKWARD",)),
                ("turn_left", ("TURN_LEFT",)),
                ("turn_right", ("TURN_RIGHT",)),
                ("move_left", ("MOVE_LEFT",)),
                ("move_right", ("MOVE_RIGHT",)),
                ("attack", ("ATTACK",)),
                ("forward_left", ("MOVE_FORWARD", "TURN_LEFT")),
                ("forward_right", ("MOVE_FORWARD", "TURN_RIGHT")),
            ),
        ),
        Scenario(
            "my_way_home",
            "my_way_home.cfg",
            ("TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "MOVE_RIGHT"),
            (
                *_MOVE_TURN_ACTIONS,
                ("move_left", ("MOVE_LEFT",)),
                ("move_right", ("MOVE_RIGHT",)),
            ),
        ),
    )
}


class UnknownEnvError(ValueError):
    """Raised for an env name that is not one of :data:`SCENARIOS`."""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; a clear error listing the valid names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        valid = ", ".join(SCENARIOS)
        raise UnknownEnvError(f"unknown env {name!r}; choose one of: {valid}") from None
