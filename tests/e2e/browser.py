"""Debian's headless chromium driven by selenium through Debian's chromium-driver (scripts/test.sh installs
both). Nothing is downloaded at run time: selenium is given both paths, so its driver manager stays idle.
Screenshots go to .testenv/artifacts/console/ (gitignored), kept after the run."""

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / ".testenv" / "artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chrome(width=1280, height=900, downloads=None):
    """A new headless browser; skips the test (saying why) only when chromium or its driver is missing."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(f"chromium ({CHROMIUM}) or chromium-driver ({DRIVER}) is not installed: "
                    "scripts/test.sh installs them with apt-get")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    if downloads:
        opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
