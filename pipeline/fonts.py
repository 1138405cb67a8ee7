"""The bundled CJK font (Noto Sans CJK SC inside the ``mplfonts`` wheel): for the report's
pictures and word clouds, and cut to a subset for offline HTML pages (the explorer page, the
validation forms). No matplotlib here."""

from __future__ import annotations

import base64
import io
import logging
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


def subset_font(text: str) -> bytes:
    """The bundled CJK font cut down to the glyphs of ``text``, as WOFF (zlib; no brotli)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # it logs every glyph name
    options = subset.Options()
    options.layout_features = []
    options.notdef_outline = True
    options.recalc_bounds = False
    options.drop_tables += ["GSUB", "GPOS", "VORG", "vhea", "vmtx", "BASE", "DSIG"]
    font = TTFont(font_path(), lazy=True, recalcBBoxes=False, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.flavor = "woff"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def font_face(family: str, text: str) -> str:
    """A CSS ``@font-face`` rule with the subset for ``text`` inlined as a data: URL."""
    encoded = base64.b64encode(subset_font(text)).decode("ascii")
    return (
        f'@font-face {{ font-family: "{family}"; '
        f'src: url(data:font/woff;base64,{encoded}) format("woff"); }}\n'
    )
