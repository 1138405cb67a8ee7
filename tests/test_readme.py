"""The README's own links: every in-page link names a heading that exists, and every setting
of params.yaml is in its settings table (a merge once dropped a whole section and a table's
rows without any test noticing)."""

import re

from tests.conftest import ROOT, SHIPPED_KEYS

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_in_page_link_has_its_heading():
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.*)$", README, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and not links - anchors, sorted(links - anchors)


def test_every_setting_is_documented():
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_0-9]+)+)`", README))
    missing = sorted(SHIPPED_KEYS - documented)
    assert not missing, missing
