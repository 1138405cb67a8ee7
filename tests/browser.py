"""Headless Chromium for browser tests: Debian's chromium and chromedriver, nothing downloaded.

``start_chromium()`` returns a Selenium webdriver with a fresh profile, no background traffic,
and performance logging on, so a test can list every network request the page made
(:func:`network_requests`) and every console message (:func:`console_errors`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


class BrowserMissing(RuntimeError):
    """Chromium or chromedriver is not installed (`.ci/run` installs both)."""


def start_chromium(width: int = 1280, height: int = 900):
    """A headless Chromium driven by Debian's /usr/bin/chromedriver, in a new empty profile.

    Raises :class:`BrowserMissing` naming the missing program (``apt-get install chromium
    chromium-driver``); selenium-manager never runs (the driver's path is given).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            raise BrowserMissing(
                f"{program} is missing: apt-get install -y chromium chromium-driver"
            )
    os.environ.setdefault("SE_OFFLINE", "true")  # were selenium-manager ever asked: no network
    profile = tempfile.mkdtemp(prefix="zhtopics-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    quit_driver = driver.quit

    def quit_and_clean() -> None:
        try:
            quit_driver()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    driver.get("about:blank")  # leave the new-tab page, whose own requests are Chromium's
    driver.get_log("performance")
    driver.get_log("browser")
    return driver


def network_requests(driver) -> list[str]:
    """URLs of the requests the browser sent since the last call (performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def console_errors(driver) -> list[str]:
    """Console messages of level SEVERE or WARNING since the last call (browser log)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
