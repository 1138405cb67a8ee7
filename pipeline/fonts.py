"""The bundled CJK font (Noto Sans CJK SC inside the ``mplfonts`` wheel): for the report's
pictures and word clouds, and cut to a subset for the explorer page. No matplotlib here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

FONT_PACKAGE = "mplfonts"
FONT_FILE = "NotoSansCJKsc-Regular.otf"
FONT_FAMILY = "Noto Sans CJK SC"


class FontError(RuntimeError):
    """The bundled CJK font cannot be found; reinstalling the environment fixes it."""


def font_path() -> Path:
    """The CJK font file inside the installed ``mplfonts`` package (also for word clouds)."""
    path = Path(str(resources.files(FONT_PACKAGE) / "fonts" / FONT_FILE))
    if not path.is_file():
        raise FontError(f"{path}: CJK font missing; reinstall the environment (make install)")
    return path
