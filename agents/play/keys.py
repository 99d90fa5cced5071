"""Keyboard to actions: held keys -> the buttons they mean -> the scenario action pressing them.

Held keys are tracked from KEYDOWN/KEYUP events rather than ``pygame.key.get_pressed()``,
which does not see posted events, so the same code runs headless and in tests.
"""

from __future__ import annotations

from agents.scenarios import Scenario

# Key names as pygame.key.name() gives them -> the button they ask for. Left/right ask to
# turn; in scenarios that cannot turn (take_cover, basic) they move sideways instead.
KEY_BUTTONS: dict[str, str] = {
    "w": "MOVE_FORWARD",
    "up": "MOVE_FORWARD",
    "s": "MOVE_BACKWARD",
    "down": "MOVE_BACKWARD",
    "a": "TURN_LEFT",
    "left": "TURN_LEFT",
    "d": "TURN_RIGHT",
    "right": "TURN_RIGHT",
    "q": "MOVE_LEFT",
    "e": "MOVE_RIGHT",
    "space": "ATTACK",
    "left ctrl": "ATTACK",
}
_SIDEWAYS = {"TURN_LEFT": "MOVE_LEFT", "TURN_RIGHT": "MOVE_RIGHT"}


class KeyState:
    """The set of keys held down, updated from key events."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    def press(self, key: str) -> None:
        self.held.add(key)

    def release(self, key: str) -> None:
        self.held.discard(key)

    def clear(self) -> None:
        self.held.clear()


def buttons_for_keys(keys: set[str], scenario: Scenario) -> set[str]:
    """The buttons of ``scenario`` that the held ``keys`` ask for."""
    available = set(scenario.buttons)
    out = set()
    for key in keys:
        button = KEY_BUTTONS.get(key)
        if button is None:
            continue
        if button not in available and button in _SIDEWAYS:
            button = _SIDEWAYS[button]
        if button in available:
            out.add(button)
    return out


def action_for_buttons(buttons: set[str], scenario: Scenario) -> int:
    """The action pressing exactly ``buttons``, else the one pressing most of them and nothing
    else (earlier actions win ties), else noop (action 0)."""
    best, best_size = 0, 0
    for index, (_, pressed) in enumerate(scenario.actions):
        pressed_set = set(pressed)
        if pressed_set == buttons:
            return index
        if pressed_set <= buttons and len(pressed_set) > best_size:
            best, best_size = index, len(pressed_set)
    return best


def action_for_keys(keys: set[str], scenario: Scenario) -> int:
    return action_for_buttons(buttons_for_keys(keys, scenario), scenario)


def key_help(scenario: Scenario) -> list[str]:
    """One line per action: the keys that choose it, e.g. ``forward_left: w/up + a/left``."""
    keys_of = {
        b: [k for k in KEY_BUTTONS if buttons_for_keys({k}, scenario) == {b}]
        for b in scenario.buttons
    }
    return [
        f"{name}: {' + '.join('/'.join(keys_of[b]) for b in pressed)}"
        for name, pressed in scenario.actions
        if pressed
    ]
