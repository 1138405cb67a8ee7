"""Screenshots of the explorer's main views in headless Chromium, for the README.

    python -m tests.screenshots data/processed/explorer.html docs/

prints the page's size and when its first view was interactive (navigation start to the topic
list drawn and its handlers set, ``performance.now()``), and writes ``explorer-topics.png``,
``explorer-topic.png``, ``explorer-document.png`` and ``explorer-word.png`` (1280 x 900): the
topic list, topic 0, the document with the largest share of topic 0 among the sampled ones,
and a search for topic 0's most probable term.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import start_chromium

VIEWS = ("topics", "topic", "document", "word")


def views(data: dict) -> dict[str, str]:
    """The location hash of each main view on this page's data."""
    topic = data["topics"][0]
    k = topic["topic"]
    best = max(data["docs"], key=lambda d: (dict(map(tuple, d["mix"])).get(k, 0), -d["row"]))
    word = data["terms"][topic["terms"][0][0]]
    return {
        "topics": "topics",
        "topic": f"topic/{k}",
        "document": f"doc/{best['id']}",
        "word": f"word/{word}",
    }


def take(page: Path, out: Path) -> list[Path]:
    """Save a PNG of each view of ``page`` into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    driver = start_chromium(1280, 900)
    written = []
    try:
        driver.get(page.resolve().as_uri())
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
        )
        ready = driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready-ms")
        size = page.stat().st_size / 1e6
        print(f"{page}: {size:.1f} MB, topic list interactive {ready} ms after navigation start")
        data = json.loads(driver.find_element(By.ID, "data").get_attribute("textContent"))
        for name, hash_ in views(data).items():
            driver.execute_script("location.hash = arguments[0]", hash_)
            driver.execute_script("return document.fonts.ready")
            time.sleep(0.3)  # the view's layout and the web font
            path = out / f"explorer-{name}.png"
            driver.save_screenshot(str(path))
            written.append(path)
    finally:
        driver.quit()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("page", type=Path, help="an explorer.html")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    args = parser.parse_args()
    for path in take(args.page, args.out):
        print(path)


if __name__ == "__main__":
    main()
