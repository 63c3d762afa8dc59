"""The web dashboard in a real browser (headless Chromium) against a real mesh.

A user signs in with an API token, sees a leader's trade copied live (through the gateway's
Server-Sent Events, no reload), with its venue, latency, slippage and the follower accounts'
profit and loss, and pauses the configuration from the page. Screenshots are saved under
``$COPYTRADE_TEST_ARTIFACTS`` (else the test's tmp dir); they are never committed. A missing
browser fails the test (CI installs chromium and chromium-driver in ``.ci/run``).
"""

from __future__ import annotations

import base64
import os
import pathlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from meshctl.api import RestClient, SimAdmin
from meshctl.demo import create_user, leader_client, register, register_keys
from meshctl.launcher import Mesh, Ports

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
LIVE_SECONDS = 2.0
"""A copy shows on the page this soon after the leader's trade (the user's promise)."""
DEADLINE = 30.0
"""The generous deadline of everything else (start-up, a status change)."""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Where screenshots go: ``$COPYTRADE_TEST_ARTIFACTS`` or a tmp dir of this test."""
    given = os.environ.get("COPYTRADE_TEST_ARTIFACTS")
    folder = pathlib.Path(given) if given else tmp_path_factory.mktemp("dashboard")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def mesh(tmp_path: pathlib.Path) -> AsyncIterator[Mesh]:
    """A mesh on SQLite (the page does not depend on the storage backend)."""
    instance = Mesh(tmp_path / "mesh", ports=Ports.free(), log_level="WARNING")
    instance.start()
    try:
        await instance.wait_ready(timeout=60)
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium with its console log kept; the test fails if it is not installed."""
    assert pathlib.Path(CHROMEDRIVER).exists(), (
        f"{CHROMEDRIVER} is missing: install the Debian packages chromium and chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll the page until ``condition`` returns something truthy; fail after ``deadline`` s."""
    ends = time.monotonic() + deadline
    while True:
        try:
            found = condition()
        except StaleElementReferenceException:
            found = None  # the page redrew it meanwhile: ask again
        if found:
            return found
        if time.monotonic() > ends:
            raise AssertionError(f"not seen within {deadline}s: {what}")
        time.sleep(0.05)


def _screenshot(driver: WebDriver, folder: pathlib.Path, name: str) -> pathlib.Path:
    """Save the whole page, below the window's bottom too, as a PNG."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _accept_confirm(driver: WebDriver) -> str:
    def alert() -> Any:
        try:
            return driver.switch_to.alert
        except NoAlertPresentException:
            return None

    dialog = _until("the confirmation dialog", alert)
    text = dialog.text
    dialog.accept()
    return str(text)


def _rows(driver: WebDriver, selector: str) -> list[list[str]]:
    """Return the cells' text of the rows ``selector`` finds, read at one instant (the page
    redraws its tables as events arrive)."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(function (r) { return Array.from(r.cells).map(function (c) {"
        " return c.textContent; }); });",
        selector,
    )
    return [[str(c) for c in row] for row in rows]


async def test_the_dashboard_shows_copies_live_and_pauses_a_configuration(
    mesh: Mesh, browser: WebDriver, artifacts: pathlib.Path
) -> None:
    token = await create_user(mesh, "dashboard")
    async with aiohttp.ClientSession() as session:
        api = RestClient(session, mesh.gateway_url, token)
        binance = SimAdmin(session, mesh.venue_urls["binance"])
        kraken = SimAdmin(session, mesh.venue_urls["kraken"])
        leader_id, leader_keys = await register_keys(
            api, binance, "binance", "leader", {"USDT": "100000"}
        )
        followers = [
            (await register(api, binance, "binance", "alice-binance", {"USDT": "10000"}))[0],
            (await register(api, kraken, "kraken", "alice-kraken", {"USD": "5000"}))[0],
        ]
        started = await api.call(
            "POST",
            "/start",
            {
                "source_exchange_id": leader_id,
                "target_exchange_ids": followers,
                "copy_settings": {"sizing_mode": "equity_ratio", "allow_quote_equivalence": True},
                "sync_settings": {"sync_interval": 1},
            },
        )
        config_id = started["config_id"]

        # Sign in: the configuration shows, and the feed is live.
        browser.get(f"{mesh.gateway_url}/dashboard")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        card = f'.config[data-config="{config_id}"]'
        _until("the configuration's card", lambda: browser.find_elements(By.CSS_SELECTOR, card))
        _until("the live feed", lambda: browser.find_element(By.ID, "live").text == "live")
        assert token not in browser.current_url

        # The leader trades; the copies appear without a reload.
        exchange = leader_client(mesh.venue_urls["binance"], leader_keys)
        try:
            await exchange.create_order("BTC/USDT", "market", "buy", 0.2)
            traded = time.monotonic()

            def filled_rows() -> list[list[str]]:
                done = [r for r in _rows(browser, "#copies tr.copy") if r[9] == "FILLED"]
                return done if len(done) == len(followers) else []

            rows = _until("a filled copy per follower", filled_rows, LIVE_SECONDS)
            seen_after = time.monotonic() - traded
            print(f"copies on the page {seen_after * 1000:.0f} ms after the leader's trade")
            # The price rises; the leader sells part: the followers' copies realize a profit.
            await binance.set_price("BTC/USDT", "51000")
            await kraken.set_price("BTC/USD", "51000")
            await exchange.create_order("BTC/USDT", "market", "sell", 0.08)
        finally:
            await exchange.close()
        for cells in rows:
            # time, symbol, side, size, filled, leader price, fill price, slippage, latency, state
            assert cells[1] in ("BTC/USDT", "BTC/USD"), cells
            assert cells[2] == "buy", cells
            assert cells[5] and cells[6], f"leader and fill prices shown: {cells}"
            assert cells[7] != "", f"slippage shown: {cells}"
            assert int(cells[8]) > 0, f"latency shown: {cells}"
        groups = [g[0] for g in _rows(browser, "#copies tr.group")]
        assert any("alice-binance · binance" in g for g in groups), groups
        assert any("alice-kraken · kraken" in g for g in groups), groups

        # Each follower account: its equity and the copies' profit and loss.
        def account_rows() -> list[list[str]]:
            found = _rows(browser, "#accounts tr[data-account]")
            # Both sells are counted once the realized profit shows.
            sold = all(r[3] not in ("", "0.00 USDT", "0.00 USD") for r in found)
            return found if len(found) == 2 and sold else []

        accounts = _until("both follower accounts with their open copies", account_rows)
        for name, venue, equity, realized, unrealized, positions in accounts:
            assert name.startswith("alice-"), accounts
            assert venue in ("binance", "kraken"), accounts
            assert equity.endswith(("USDT", "USD")), accounts
            assert not realized.startswith("\u2212"), f"a profit: {accounts}"
            assert unrealized != "n/a", accounts
            assert "BTC/" in positions and "@" in positions, accounts
        _until(
            "a point per copy on the latency chart",
            lambda: len(browser.find_elements(By.CSS_SELECTOR, "#latency-chart circle")) == 4,
        )
        shot = _screenshot(browser, artifacts, "dashboard-live")

        # Pause from the page: confirm, and the status changes on the page.
        browser.find_element(By.CSS_SELECTOR, f"{card} button.pause").click()
        assert config_id in _accept_confirm(browser)
        _until(
            "the PAUSED status",
            lambda: browser.find_element(By.CSS_SELECTOR, f"{card} .badge").text == "PAUSED",
        )
        _until(
            "resume enabled once paused",
            lambda: browser.find_element(By.CSS_SELECTOR, f"{card} button.resume").is_enabled(),
        )
        status = await api.call("GET", f"/status/{config_id}")
        assert status["config"]["status"] == "COPY_STATUS_PAUSED"
        _screenshot(browser, artifacts, "dashboard-paused")

    errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], f"console errors: {errors}"
    print(f"screenshots in {shot.parent}")
