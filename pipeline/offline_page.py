"""One self-contained HTML page from a template in ``pipeline/templates``: the data embedded as
JSON that no text can break out of, the script inline and allowed by its hash alone, styles and a
``data:`` font inline. Shared by the explorer and the validation forms; no request anywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources

TEMPLATES = "pipeline.templates"


def template(name: str) -> str:
    """A template file shipped inside the package."""
    return (resources.files(TEMPLATES) / name).read_text(encoding="utf-8")


def embed_json(data: dict) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>``, ``&`` and the
    line separators U+2028/2029 escaped, so no text can close the element or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def content_security_policy(script: str) -> str:
    """Only this script (by its SHA-256), inline styles and data: fonts and images."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; "
        f"script-src 'sha256-{digest}'; "
        "style-src 'unsafe-inline'; font-src data:; img-src data:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'"
    )


def fill(page: str, values: dict[str, str]) -> str:
    """``{{NAME}}`` placeholders replaced in one pass, so a text holding "{{SCRIPT}}" stays text."""
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], page)
