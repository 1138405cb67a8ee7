"""The bundled CJK font (mplfonts) cut down to the glyphs a page uses, for offline HTML."""

from __future__ import annotations

import base64
import io
import logging


def subset_font(text: str) -> bytes:
    """The bundled CJK font cut down to the glyphs of ``text``, as WOFF (zlib; no brotli)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from pipeline.plots import font_path

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
