"""The pygame window: frames scaled up side by side, a HUD strip, and overlays."""

from __future__ import annotations

import os

import numpy as np
import pygame

HUD_HEIGHT = 58
GAP = 8
BACKGROUND = (12, 12, 16)
TEXT = (230, 230, 230)
DIM = (150, 150, 160)
WARN = (255, 90, 70)


class NoDisplayError(RuntimeError):
    """There is no screen to open a window on."""


def has_display() -> bool:
    """Whether SDL can open a real window here (or has been told to use a headless driver)."""
    if os.environ.get("SDL_VIDEODRIVER"):
        return True
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


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
        pygame.display.init()
        pygame.font.init()
        self.labels, self.scale = labels, scale
        side = 64 * scale
        width = len(labels) * side + (len(labels) - 1) * GAP
        self.size = (width + width % 2, side + HUD_HEIGHT + 18)  # even: video encoders need it
        self.screen = pygame.display.set_mode(self.size)
        pygame.display.set_caption(title)
        self.font = pygame.font.Font(None, 22)
        self.big = pygame.font.Font(None, 34)
        self._label_surfaces = [self.font.render(t, True, DIM) for t in labels]

    def draw(
        self,
        frames: list[np.ndarray | None],
        hud: list[str],
        message: str | None,
        help_lines: list[str] | None = None,
    ) -> None:
        """Draw one frame per pane ((64, 64, 3) uint8 or None for blank), HUD lines, and an
        optional centred message and help overlay, then flip."""
        self.screen.fill(BACKGROUND)
        side = 64 * self.scale
        for i, frame in enumerate(frames):
            x = i * (side + GAP)
            self.screen.blit(self._label_surfaces[i], (x + 4, 2))
            if frame is not None:
                surf = pygame.surfarray.make_surface(frame.swapaxes(0, 1))  # (W, H, 3) for SDL
                self.screen.blit(pygame.transform.scale(surf, (side, side)), (x, 18))
        y = 18 + side + 4
        for line in hud:
            self.screen.blit(self.font.render(line, True, TEXT), (6, y))
            y += 18
        if message:
            self._centred(message, WARN)
        if help_lines:
            self._overlay(help_lines)
        pygame.display.flip()

    def _centred(self, text: str, colour: tuple[int, int, int]) -> None:
        surf = self.big.render(text, True, colour)
        box = surf.get_rect(center=(self.size[0] // 2, 18 + 32 * self.scale))
        pygame.draw.rect(self.screen, (0, 0, 0), box.inflate(16, 10))
        self.screen.blit(surf, box)

    def _overlay(self, lines: list[str]) -> None:
        panel = pygame.Surface((self.size[0] - 40, 20 * len(lines) + 16), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 200))
        for i, line in enumerate(lines):
            panel.blit(self.font.render(line, True, TEXT), (10, 8 + 20 * i))
        self.screen.blit(panel, (20, 24))

    def pixels(self) -> np.ndarray:
        """What the window shows now: (H, W, 3) uint8."""
        return pygame.surfarray.array3d(self.screen).swapaxes(0, 1)

    def close(self) -> None:
        pygame.display.quit()
