"""The pygame window: frames scaled up side by side, a game-state strip under each, a HUD
strip, and overlays."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pygame

from worldmodel.dream.env import sdl_runtime_dir
from worldmodel.game_state import LABELS

LABEL_HEIGHT = 18
STATE_HEIGHT = 30
HUD_LINES = 3
LINE = 17
GAP = 8
BACKGROUND = (12, 12, 16)
TEXT = (230, 230, 230)
DIM = (150, 150, 160)
WARN = (255, 90, 70)
BAR_BACK = (45, 45, 52)


class NoDisplayError(RuntimeError):
    """There is no screen to open a window on."""


def has_display() -> bool:
    """Whether SDL can open a real window here (or has been told to use a headless driver)."""
    if os.environ.get("SDL_VIDEODRIVER"):
        return True
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass
class PaneState:
    """The game state shown under a pane: variable names and values (None: the pane's world
    does not carry them), steps survived and return so far."""

    names: list[str]
    values: np.ndarray | None
    steps: int
    ret: float


def health_colour(fraction: float) -> tuple[int, int, int]:
    """Green when healthy, through yellow, to red near death."""
    f = min(max(fraction, 0.0), 1.0)
    return (int(230 * min(1.0, 2 * (1 - f))), int(200 * min(1.0, 2 * f)), 60)


class Window:
    """Shows ``panes`` labelled 64×64 frames at ``scale``× (nearest neighbour: crisp pixels)."""

    def __init__(self, labels: list[str], scale: int, title: str, headless: bool) -> None:
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        elif not has_display():
            raise NoDisplayError(
                "no display found (DISPLAY is not set): run with --headless, or set DISPLAY"
            )
        sdl_runtime_dir()
        pygame.display.init()
        pygame.font.init()
        self.labels, self.scale = labels, scale
        self.side = 64 * scale
        width = len(labels) * self.side + (len(labels) - 1) * GAP
        height = LABEL_HEIGHT + self.side + STATE_HEIGHT + HUD_LINES * LINE + 8
        self.size = (width + width % 2, height + height % 2)  # even: video encoders need it
        self.screen = pygame.display.set_mode(self.size)
        pygame.display.set_caption(title)
        self.font = pygame.font.Font(None, 20)
        self.big = pygame.font.Font(None, 30)
        self._label_surfaces = [self.font.render(t, True, DIM) for t in labels]

    def draw(
        self,
        frames: list[np.ndarray | None],
        states: list[PaneState | None],
        hud: list[str],
        message: list[str] | None,
        help_lines: list[str] | None = None,
    ) -> None:
        """Draw one frame per pane ((64, 64, 3) uint8 or None for blank) with its game state,
        the HUD lines (wrapped to the window), an optional centred message (one or more
        lines) and a help overlay, then flip."""
        self.screen.fill(BACKGROUND)
        for i, frame in enumerate(frames):
            x = i * (self.side + GAP)
            self.screen.blit(self._label_surfaces[i], (x + 4, 2))
            if frame is not None:
                surf = pygame.surfarray.make_surface(frame.swapaxes(0, 1))  # (W, H, 3) for SDL
                self.screen.blit(
                    pygame.transform.scale(surf, (self.side, self.side)), (x, LABEL_HEIGHT)
                )
            if i < len(states) and states[i] is not None:
                self._state(states[i], x, LABEL_HEIGHT + self.side + 3)
        y = LABEL_HEIGHT + self.side + STATE_HEIGHT + 2
        for line in self._wrap(hud)[: HUD_LINES + 1]:
            self.screen.blit(self.font.render(line, True, TEXT), (6, y))
            y += LINE
        if message:
            self._centred(message, WARN)
        if help_lines:
            self._overlay(self._wrap(help_lines, margin=60))
        pygame.display.flip()

    def _state(self, state: PaneState, x: int, y: int) -> None:
        """A health bar and number, the other variables, steps and return."""
        text = f"steps {state.steps}   return {state.ret:+.0f}"
        if state.values is None:
            self.screen.blit(self.font.render(f"no game state   {text}", True, DIM), (x + 4, y + 6))
            return
        names, values = state.names, state.values
        if "HEALTH" in names:
            health = float(values[names.index("HEALTH")])
            w = min(self.side // 3, 160)
            pygame.draw.rect(self.screen, BAR_BACK, (x + 4, y + 4, w, 16))
            fill = int(w * min(max(health, 0.0), 100.0) / 100.0)
            pygame.draw.rect(self.screen, health_colour(health / 100.0), (x + 4, y + 4, fill, 16))
            self.screen.blit(self.font.render(f"{health:.0f} HP", True, TEXT), (x + w + 10, y + 5))
            x += w + 62
        others = [
            f"{LABELS.get(n, n)} {v:.0f}"
            for n, v in zip(names, values, strict=True)
            if n != "HEALTH"
        ]
        line = "   ".join([*others, text])
        self.screen.blit(self.font.render(line, True, DIM), (x + 4, y + 5))

    def _wrap(self, lines: list[str], margin: int = 12) -> list[str]:
        """Lines broken at spaces so that each fits the window's width."""
        out = []
        width = self.size[0] - margin
        for line in lines:
            words, current = line.split(" "), ""
            for word in words:
                trial = f"{current} {word}" if current else word
                if current and self.font.size(trial)[0] > width:
                    out.append(current)
                    current = word.lstrip()
                else:
                    current = trial
            out.append(current)
        return out

    def _centred(self, lines: list[str], colour: tuple[int, int, int]) -> None:
        surfs = [self.big.render(t, True, colour if i == 0 else TEXT) for i, t in enumerate(lines)]
        height = sum(s.get_height() + 4 for s in surfs)
        y = LABEL_HEIGHT + self.side // 2 - height // 2
        box = pygame.Rect(0, 0, max(s.get_width() for s in surfs) + 20, height + 10)
        box.center = (self.size[0] // 2, y + height // 2)
        pygame.draw.rect(self.screen, (0, 0, 0), box)
        for surf in surfs:
            self.screen.blit(surf, surf.get_rect(midtop=(self.size[0] // 2, y)))
            y += surf.get_height() + 4

    def _overlay(self, lines: list[str]) -> None:
        panel = pygame.Surface((self.size[0] - 40, 20 * len(lines) + 16), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 210))
        for i, line in enumerate(lines):
            panel.blit(self.font.render(line, True, TEXT), (10, 8 + 20 * i))
        self.screen.blit(panel, (20, 24))

    def pixels(self) -> np.ndarray:
        """What the window shows now: (H, W, 3) uint8."""
        return pygame.surfarray.array3d(self.screen).swapaxes(0, 1)

    def close(self) -> None:
        pygame.display.quit()
