"""The page in a real headless browser: Debian's chromium + chromium-driver through selenium.

Needs the apt packages ``chromium`` and ``chromium-driver`` (no browser download is possible
here); the test fails, not skips, when they are missing, since CI installs them.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.dashboard.fixture import KILL_AT, append_hours, build_state
from tests.dashboard.server import running_dashboard

CHROMIUM = os.environ.get("KRAKENRL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KRAKENRL_CHROMEDRIVER", "/usr/bin/chromedriver")
WIDTH, HEIGHT = 1400, 1000
PINNED_NOW = datetime(2024, 2, 1, 0, 5, tzinfo=UTC).timestamp()  # 5 min after the fixture's pinned writes
TOKEN = "browser-test-token-0123456789"


def make_driver() -> webdriver.Chrome:
    for exe in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(exe), f"{exe} missing: apt-get install chromium chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={WIDTH},{HEIGHT}", "--force-device-scale-factor=1", "--disable-extensions",
                "--no-first-run", "--disable-background-networking"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors (CSP violations included)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    d = make_driver()
    try:
        yield d
    finally:
        d.quit()


def wait_rendered(driver: webdriver.Chrome, at_least: int = 1, timeout: float = 30) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered") or 0) >= at_least)


def painted_pixels(driver: webdriver.Chrome, chart_id: str) -> int:
    """Non-transparent pixels drawn on a chart's canvas (0 for a blank chart)."""
    return int(driver.execute_script(
        "const c = document.querySelector('#' + arguments[0] + ' canvas');"
        "if (!c) return 0; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;", chart_id))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


def money(text: str) -> str:
    return f"{Decimal(text).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


def save_screenshot(driver: webdriver.Chrome, path: Path) -> tuple[int, int]:
    data = driver.get_screenshot_as_png()
    path.write_bytes(data)
    return png_size(data)


def test_page_renders_the_run_and_matches_the_api(driver: webdriver.Chrome, state_db: Path, tmp_path: Path) -> None:
    with running_dashboard(state_db, clock=lambda: PINNED_NOW) as base:
        api = requests.get(base + "/api/status", timeout=10).json()
        driver.get(base + "/")
        wait_rendered(driver)
        eq = driver.find_element(By.ID, "equity")
        assert eq.get_attribute("data-value") == api["equity"]
        assert eq.text == money(api["equity"])
        assert driver.find_element(By.ID, "drawdown").get_attribute("data-value") == repr(api["drawdown"])
        for chart in ("chart-equity", "chart-drawdown", "chart-allocation", "chart-interventions", "chart-confidence"):
            assert painted_pixels(driver, chart) > 500, f"{chart} is blank"
        assert driver.find_element(By.ID, "freshness").text.startswith("live")
        assert not driver.find_element(By.ID, "kill-banner").is_displayed()
        rows = driver.find_elements(By.CSS_SELECTOR, "#positions tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["BTC", "ETH", "SOL", "cash"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#signals tbody tr")) == 9  # 3 assets x 3 horizons
        assert len(driver.find_elements(By.CSS_SELECTOR, "#regime tbody tr")) == 3
        links = driver.find_elements(By.CSS_SELECTOR, "#hours tbody a")
        assert links and links[0].get_attribute("href") == f"{base}/api/audit/{api['last_closed_hour']}"
        rules = [r.find_element(By.TAG_NAME, "td").text
                 for r in driver.find_elements(By.CSS_SELECTOR, "#intervention-totals tbody tr")]
        assert "kill_switch" in rules
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        w, h = save_screenshot(driver, tmp_path / "dashboard.png")
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight, window.devicePixelRatio]")
        assert (w, h) == (int(inner[0] * inner[2]), int(inner[1] * inner[2]))
        assert w == WIDTH and h >= HEIGHT - 200
        links[0].click()  # the audit record of the newest hour, as JSON
        assert f'"hour":{api["last_closed_hour"]}' in driver.page_source.replace(" ", "")


def test_page_refreshes_itself_and_flags_stale_data(driver: webdriver.Chrome, state_db: Path) -> None:
    with running_dashboard(state_db, refresh_s=1, stale_after_s=3600) as base:  # real clock: January 2024 is stale
        driver.get(base + "/")
        wait_rendered(driver)
        assert driver.find_element(By.ID, "freshness").text.startswith("STALE")
        before = driver.find_element(By.ID, "equity").get_attribute("data-value")
        append_hours(state_db, 12)  # the loop writes while the page is open
        api = requests.get(base + "/api/status", timeout=10).json()
        assert api["equity"] != before
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "equity").get_attribute("data-value") == api["equity"])
        assert driver.find_element(By.ID, "freshness").text.startswith("live")  # just written
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "freshness").text == "unreachable")
    assert driver.find_element(By.ID, "error-banner").is_displayed()


def test_kill_switch_banner_behind_a_token(driver: webdriver.Chrome, tmp_path: Path) -> None:
    path = build_state(tmp_path / "ks.db", KILL_AT + 3)
    with running_dashboard(path, TOKEN, host="0.0.0.0", clock=lambda: PINNED_NOW) as base:
        driver.get(base + "/")
        assert "authentication required" in driver.page_source
        driver.get(base + "/?token=" + TOKEN)
        wait_rendered(driver)
        banner = driver.find_element(By.ID, "kill-banner")
        assert banner.is_displayed()
        assert "KILL SWITCH ENGAGED since 2024-01-09T08:00:00Z" in banner.text and "drawdown_velocity" in banner.text
        assert "token" not in driver.current_url  # the page drops it from the address bar
