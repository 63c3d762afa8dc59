"""``GET /docs`` in a real browser (headless Chromium): Swagger UI renders every operation of
``/openapi.json`` under the page's Content-Security-Policy, with no console error, and every
request the page makes goes to the gateway's own origin (nothing from a CDN).

A missing browser fails the test (CI installs chromium and chromium-driver in ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.gateway.conftest import Harness

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
DEADLINE = 30.0
"""Generous: the page parses a 1 MB script on a shared, busy machine."""
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium keeping its console and network logs."""
    assert pathlib.Path(CHROMEDRIVER).exists(), (
        f"{CHROMEDRIVER} is missing: install the Debian packages chromium and chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _render(driver: WebDriver, url: str, operations: int) -> dict[str, Any]:
    driver.get(url)
    ends = time.monotonic() + DEADLINE
    shown = 0
    while time.monotonic() < ends:
        shown = len(driver.find_elements(By.CSS_SELECTOR, ".opblock"))
        if shown >= operations:
            break
        time.sleep(0.1)
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    return {
        "shown": shown,
        "title": driver.find_element(By.CSS_SELECTOR, ".info .title").text,
        "errors": [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
        "requested": requested,
    }


async def test_swagger_ui_renders_every_operation_from_this_origin_only(
    harness: Harness, browser: WebDriver
) -> None:
    spec = await (await harness.client.get("/openapi.json")).json()
    operations = sum(
        1 for item in spec["paths"].values() for method in item if method in HTTP_METHODS
    )
    origin = str(harness.client.make_url("")).rstrip("/")
    # Selenium blocks: it runs in a thread while this loop serves the page.
    seen = await asyncio.to_thread(_render, browser, f"{origin}/docs", operations)
    assert seen["shown"] == operations
    assert seen["title"].startswith(spec["info"]["title"])
    assert seen["errors"] == []
    assert f"{origin}/openapi.json" in seen["requested"]
    foreign = [url for url in seen["requested"] if not url.startswith((origin + "/", "data:"))]
    assert foreign == []
