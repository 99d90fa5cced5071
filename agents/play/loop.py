"""The game loop: events -> action -> session step -> window -> recorder, timed per frame."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pygame

from agents.play.keys import KeyState, action_for_keys, key_help
from agents.play.recorder import Recorder
from agents.play.session import PlaySession, Score, View
from agents.play.window import PaneState, Window
from agents.policies import Policy, new_episode
from worldmodel.game_state import GameState

CONTROLS = [
    "R restart   P pause   T/G temperature up/down   TAB you <-> agent   H help   ESC quit",
    "C (side by side) re-sync: the dream starts again from the real game's frames and state",
]


# The sampling settings a recording keeps and a replay dreams with (play.py's sampling flags)
REPLAYED_SAMPLING = ("temperature", "top_p", "passes", "keep_likely", "copy_unchanged")


@dataclass
class PlayOptions:
    scale: int = 8
    fps: float = 15.0  # frame-rate cap; 0 = as fast as the model goes
    headless: bool = False
    steps: int | None = None  # stop after this many steps (headless runs)
    policy: str = "human"  # human, random, agent, or script:FILE
    record: Path | None = None
    device: str = "cpu"


@dataclass
class Summary:
    steps: int = 0
    frames: int = 0
    seconds: float = 0.0
    frame_times: list[float] = field(default_factory=list)  # key read -> frame on screen
    parts: dict[str, list[float]] = field(default_factory=dict)
    interrupted: bool = False  # stopped by Ctrl-C (or a kill) rather than ESC or --steps

    def median_fps(self) -> float:
        return 1.0 / float(np.median(self.frame_times)) if self.frame_times else 0.0

    def line(self, mode: str, device: str) -> str:
        parts = ", ".join(f"{k} {np.median(v) * 1e3:.1f}" for k, v in self.parts.items() if v)
        mean = self.frames / self.seconds if self.seconds else 0.0
        return (
            f"played {self.steps} steps ({self.frames} frames) in {mode} mode on {device}: "
            f"median {self.median_fps():.1f} fps, mean {mean:.1f} fps "
            f"(median ms per step: {parts})"
        )


@dataclass
class Script:
    """Actions to play in turn: a recording's (once; with the temperature of each step and
    the steps before which the player re-synced the dream) or a text file's (repeated)."""

    actions: list[int]
    repeat: bool
    temperatures: list[float] = field(default_factory=list)
    resyncs: set[int] = field(default_factory=set)  # positions of the steps after a re-sync


def load_script(path: Path, action_names: list[str]) -> Script:
    """Actions from a recorded ``.actions.json`` or a text file with one action name or index
    per line."""
    text = path.read_text()
    if path.suffix == ".json":
        try:
            steps = json.loads(text)["steps"]
            actions = [int(s["action"]) for s in steps]
            temperatures = [float(s["temperature"]) for s in steps if "temperature" in s]
            resyncs = {i for i, s in enumerate(steps) if s.get("resync")}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path} is not a recorded action log ({type(e).__name__})") from None
        if len(temperatures) != len(actions):
            temperatures = []
        return Script(actions, False, temperatures, resyncs)
    actions = []
    for line in text.split():
        if not line.isdigit() and line not in action_names:
            raise ValueError(f"{path}: unknown action {line!r} (names: {', '.join(action_names)})")
        actions.append(int(line) if line.isdigit() else action_names.index(line))
    if not actions or max(actions) >= len(action_names):
        raise ValueError(f"{path}: no valid actions (names: {', '.join(action_names)})")
    return Script(actions, True)


class Controller:
    """Chooses each step's action: the keyboard, an agent, random, or a script."""

    def __init__(
        self, policy: str, n_actions: int, action_names: list[str], seed: int, agent: Policy | None
    ) -> None:
        self.keys = KeyState()
        self.agent = agent
        self.random = np.random.default_rng(seed)
        self.script: Script | None = None
        self.temperature: float | None = None  # to set before the step just chosen
        self.resync = False  # re-sync the dream before the step just chosen (a recording's)
        self.source = policy
        self.n_actions = n_actions
        if policy.startswith("script:"):
            self.script = load_script(Path(policy[7:]), action_names)
            self.source = "script"
        elif policy == "agent" and agent is None:
            raise ValueError("--policy agent needs a trained agent (see --agent)")
        self.position = 0
        self.finished = False

    def toggle_agent(self) -> bool:
        if self.agent is None:
            return False
        self.source = "human" if self.source == "agent" else "agent"
        return True

    def restarted(self) -> None:
        """A new episode: an agent with memory forgets its last action."""
        if self.agent is not None:
            new_episode(self.agent, 0)

    def act(self, obs: np.ndarray, scenario) -> int:
        action = self._choose(obs, scenario)
        remember = getattr(self.agent, "remember", None)
        if remember is not None and self.source != "agent":  # the agent's own are remembered
            remember(np.array([action]))
        return action

    def _choose(self, obs: np.ndarray, scenario) -> int:
        if self.source == "agent":
            assert self.agent is not None
            return int(self.agent.act(obs[None])[0])
        if self.source == "random":
            return int(self.random.integers(self.n_actions))
        if self.source == "script":
            script = self.script
            assert script is not None
            if self.position >= len(script.actions) and not script.repeat:
                self.finished = True
                return 0
            action = script.actions[self.position % len(script.actions)]
            if script.temperatures:
                self.temperature = script.temperatures[self.position]
            self.resync = self.position in script.resyncs
            self.position += 1
            return action
        return action_for_keys(self.keys.held, scenario)


def run(
    session: PlaySession,
    options: PlayOptions,
    controller: Controller,
    on_frame: Callable[[int], None] | None = None,
) -> Summary:
    """Play until ESC, the window closes, ``options.steps`` steps (headless runs restart
    finished episodes by themselves) or Ctrl-C (``summary.interrupted``: the summary is as
    full as ESC's). ``on_frame(n)`` runs before each frame's event poll (tests post key events
    from it)."""
    labels = {
        "dream": ["dream"],
        "real": ["real ViZDoom"],
        "side-by-side": ["dream", "real ViZDoom (same actions)"],
    }[session.mode]
    window = Window(labels, options.scale, f"doom-dream: {session.scenario.name}", options.headless)
    names = list(session.scenario.action_names)
    recorder = None
    if options.record is not None:
        recorder = Recorder(
            options.record,
            options.fps or 15.0,
            {
                "env": session.scenario.name,
                "mode": session.mode,
                "seed": session.seed,
                "temperature": session.temperature,
                "sampling": {k: getattr(session.sampling, k) for k in REPLAYED_SAMPLING},
                "action_names": names,
            },
        )
    summary = Summary()
    view = session.restart()
    controller.restarted()
    queue = list(zip_longest(view.dream, view.real))
    shown = (session.dream_frame, session.real_frame)
    action, paused, show_help, running, resynced = 0, False, False, True, False
    last_view = View()
    t_run = time.perf_counter()
    try:
        while running:
            if on_frame is not None:
                on_frame(summary.frames)
            t0 = time.perf_counter()
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    running = False
                elif event.type == pygame.KEYDOWN:
                    key = pygame.key.name(event.key)
                    controller.keys.press(key)
                    if key == "escape":
                        running = False
                    elif key == "r":
                        view = session.restart()
                        controller.restarted()
                        queue, resynced = list(zip_longest(view.dream, view.real)), False
                    elif key == "p":
                        paused = not paused
                    elif key == "h":
                        show_help = not show_help
                    elif key in ("t", "g"):
                        session.set_temperature(session.temperature + (0.1 if key == "t" else -0.1))
                    elif key == "tab":
                        controller.toggle_agent()
                    elif key == "c" and (resync := session.resync()) is not None:
                        queue, resynced = list(zip_longest(resync.dream, resync.real)), True
                elif event.type == pygame.KEYUP:
                    controller.keys.release(pygame.key.name(event.key))
            if not running:
                break
            idle = paused or (session.over and not queue)
            if session.over and not queue and options.headless:
                view = session.restart()  # unattended runs carry on with a new episode
                controller.restarted()
                queue, resynced = list(zip_longest(view.dream, view.real)), False
                idle = False
            if not idle and not queue:
                obs = session.dream_frame if session.shows_dream else session.real_frame
                action = controller.act(obs, session.scenario)
                if controller.finished:
                    break
                was_over = (session.dream_over, session.real_over)
                if controller.temperature is not None:  # replaying a recording
                    session.set_temperature(controller.temperature)
                if controller.resync:  # ... where the player re-synced the dream
                    resynced = session.resync() is not None
                last_view = session.step(action)
                for line in ended_lines(session, was_over):
                    print(line, flush=True)
                queue = list(zip_longest(last_view.dream, last_view.real))
                summary.steps += 1
                for part, seconds in last_view.timing.items():
                    summary.parts.setdefault(part, []).append(seconds)
                if recorder is not None:
                    recorder.step(
                        {
                            "step": session.steps,
                            "action": action,
                            "action_name": names[action],
                            "source": controller.source,
                            "temperature": session.temperature,
                            "reward_pred": last_view.reward_pred,
                            "done_prob": last_view.done_prob,
                            "real_reward": last_view.real_reward,
                            **_variables("dream", session.dream_score, session.variable_names),
                            **_variables("real", session.real_score, session.variable_names),
                            **({"resync": True} if resynced else {}),
                        }
                    )
                resynced = False
            if queue:
                dream_frame, real_frame = queue.pop(0)
                shown = (
                    dream_frame if dream_frame is not None else shown[0],
                    real_frame if real_frame is not None else shown[1],
                )
            panes = ([shown[0]] if session.shows_dream else []) + (
                [shown[1]] if session.shows_real else []
            )
            recent = summary.frame_times[-60:]
            fps = 1.0 / float(np.median(recent)) if recent else 0.0
            parts = "  ".join(
                f"{k} {np.median(v[-60:]) * 1e3:.0f}ms"
                for k, v in summary.parts.items()
                if k in ("prior", "decode", "real") and v
            )
            hud = [
                f"{session.mode} | {fps:4.1f} fps ({parts}) | {options.device} | temp "
                f"{session.temperature:.2f} | step {session.steps}",
                f"action: {names[action]} ({controller.source})",
                "H help  R restart  P pause  T/G temperature  TAB agent  "
                + ("C re-sync  " if session.mode == "side-by-side" else "")
                + "ESC quit",
            ]
            states = ([_pane(session.dream_score, session)] if session.shows_dream else []) + (
                [_pane(session.real_score, session)] if session.shows_real else []
            )
            t_draw = time.perf_counter()
            window.draw(
                panes,
                states,
                hud,
                _message(session, paused),
                key_help(session.scenario) + CONTROLS if show_help else None,
            )
            t1 = time.perf_counter()
            if not idle:
                summary.frames += 1
                summary.frame_times.append(t1 - t0)
                summary.parts.setdefault("draw", []).append(t1 - t_draw)
                if recorder is not None:
                    recorder.frame(window.pixels())
            if options.steps is not None and summary.steps >= options.steps and not queue:
                break
            wait = (1.0 / options.fps - (time.perf_counter() - t0)) if options.fps else 0.0
            if wait > 0 or idle:
                time.sleep(max(wait, 0.01 if idle else 0.0))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.seconds = time.perf_counter() - t_run
        if recorder is not None:
            recorder.close()
        window.close()
    return summary


def ended_lines(session: PlaySession, was_over: tuple[bool, bool]) -> list[str]:
    """A line for each shown side whose episode ended in the last step (what the window says
    at that moment), for logs and headless runs."""
    lines = []
    for side, shown, score, before in (
        ("dream", session.shows_dream, session.dream_score, was_over[0]),
        ("real", session.shows_real, session.real_score, was_over[1]),
    ):
        if not shown or before or not score.over:
            continue
        state = ""
        if score.variables is not None:
            pairs = zip(session.variable_names, score.variables, strict=True)
            state = " (" + ", ".join(f"{n} {v:.0f}" for n, v in pairs) + ")"
        end = score.reason or "ended"
        lines.append(
            f"episode {session.episode + 1}: {side} {end} after {score.steps} steps, "
            f"return {score.ret:+.0f}{state}"
        )
    return lines


def _pane(score: Score, session: PlaySession) -> PaneState:
    return PaneState(session.variable_names, score.variables, score.steps, score.ret)


def _variables(side: str, score: Score, names: list[str]) -> dict[str, float]:
    if score.variables is None:
        return {}
    return {f"{side}_{n}": float(v) for n, v in zip(names, score.variables, strict=True)}


def _tally(session: PlaySession, score: Score) -> str:
    """``, kills 7`` where the scenario counts kills (the game state's :meth:`tally`)."""
    if score.variables is None:
        return ""
    text = GameState(tuple(session.variable_names)).tally(score.variables)
    return f", {text}" if text else ""


def _message(session: PlaySession, paused: bool) -> list[str] | None:
    if paused:
        return ["Paused - press P to resume"]
    lines = []
    if session.shows_dream and session.dream_over:
        d = session.dream_score
        title = "You died in the dream" if d.reason == "death" else "The dream ended"
        lines += [title, f"survived {d.steps} steps, return {d.ret:+.0f}{_tally(session, d)}"]
    if session.shows_real and session.real_over:
        r = session.real_score
        title = {"death": "You died", "timeout": "Time is up"}.get(r.reason, "The game ended")
        lines += [
            f"{title} in the real game",
            f"survived {r.steps} steps, return {r.ret:+.0f}{_tally(session, r)}",
        ]
    return [*lines, "press R to play again"] if lines else None
