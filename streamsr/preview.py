"""The preview window (pygame/SDL2, the optional ``live`` extra): split, side-by-side or SR-only.

Keys: space cycles split / side by side / SR only; left/right (or dragging) move the divider;
2 / 4 switch the scale; s saves a snapshot PNG; q or Esc quits.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import BackendUnavailableError
from .live import Command, LiveStats, bicubic_image

MODES = ("split", "side", "sr")


class PygameSink:
    """A resizable window; bicubic on the left of the divider, SAFDN on the right."""

    def __init__(self, title: str = "streamsr live") -> None:
        try:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            import pygame
        except ImportError as e:
            raise BackendUnavailableError("the preview window needs pygame: pip install 'streamsr[live]'") from e
        if os.name == "posix" and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
                and os.environ.get("SDL_VIDEODRIVER") in (None, "", "x11", "wayland"):
            raise BackendUnavailableError("no display (DISPLAY is not set); use --no-window, or run under a desktop or Xvfb")
        self._pg = pygame
        pygame.display.init()
        pygame.font.init()
        self._title = title
        self._screen = None
        self._font = pygame.font.Font(None, 22)
        self.mode = "split"
        self.divider = 0.5
        self._dragging = False

    def _ensure_window(self, width: int, height: int) -> None:
        pg = self._pg
        if self._screen is None or self._screen.get_size() != (width, height):
            self._screen = pg.display.set_mode((width, height))
            pg.display.set_caption(self._title)

    def compose(self, lr: np.ndarray, sr: np.ndarray) -> np.ndarray:
        """The picture the window shows, as (H, W, 3) uint8."""
        if self.mode == "sr":
            return sr
        scale = sr.shape[0] // lr.shape[0]
        bic = bicubic_image(lr, scale)
        if self.mode == "side":
            return np.concatenate([bic, sr], axis=1)
        x = int(self.divider * sr.shape[1])
        view = sr.copy()
        view[:, :x] = bic[:, :x]
        view[:, max(0, x - 1) : x + 1] = (255, 255, 0)
        return view

    def show(self, lr: np.ndarray, sr: np.ndarray, stats: LiveStats) -> Command:
        pg = self._pg
        view = self.compose(lr, sr)
        self._ensure_window(view.shape[1], view.shape[0])
        assert self._screen is not None
        pg.surfarray.blit_array(self._screen, view.swapaxes(0, 1))
        lines = [*stats.lines(), f"[{self.mode}] space: view  arrows: divider  2/4: scale  s: snapshot  q: quit"]
        for i, text in enumerate(lines):
            label = self._font.render(text, True, (255, 255, 255), (0, 0, 0))
            self._screen.blit(label, (6, 6 + 20 * i))
        pg.display.flip()
        return self._events(view.shape[1])

    def _events(self, width: int) -> Command:
        pg = self._pg
        command = Command()
        for event in pg.event.get():
            if event.type == pg.QUIT:
                command.quit = True
            elif event.type == pg.KEYDOWN:
                key = event.key
                if key in (pg.K_q, pg.K_ESCAPE):
                    command.quit = True
                elif key == pg.K_SPACE:
                    self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
                elif key == pg.K_LEFT:
                    self.divider = max(0.0, self.divider - 0.05)
                elif key == pg.K_RIGHT:
                    self.divider = min(1.0, self.divider + 0.05)
                elif key == pg.K_s:
                    command.snapshot = True
                elif key in (pg.K_2, pg.K_4):
                    command.scale = 2 if key == pg.K_2 else 4
            elif event.type == pg.MOUSEBUTTONDOWN:
                self._dragging = True
            elif event.type == pg.MOUSEBUTTONUP:
                self._dragging = False
            if self._dragging and event.type in (pg.MOUSEBUTTONDOWN, pg.MOUSEMOTION):
                self.divider = min(1.0, max(0.0, event.pos[0] / width))
        return command

    def screenshot(self, path: str) -> None:
        """Save what the window shows right now (read back from the display surface)."""
        if self._screen is not None:
            self._pg.image.save(self._screen, path)

    def close(self) -> None:
        self._pg.display.quit()
