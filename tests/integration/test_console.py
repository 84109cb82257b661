"""The desk's web console in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium): nothing shows before sign-in and a wrong key is refused; a staff member
signs in, sees a warning arrive from a published reading without reloading, acknowledges it,
records its outcome, finds it marked on the device's chart, and sees the portfolio change.

Skipped only when Chromium or its driver is not installed (``scripts/setup.sh`` installs both
when run as root)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from core import db
from core.contract import telemetry_topic
from core.mqtt import Publisher
from core.settings import host_port
from forewarn.children import Child, spawn
from forewarn.launcher import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TENANT = "console-co"


@pytest.fixture(scope="module")
def api_url(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``forewarn api`` as a real process on a free port, ready when /healthz answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    child: Child = spawn("api", ["api"], {**services.env, "FOREWARN_API_PORT": str(port)}, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert child.wait_healthy(f"{base}/healthz", 30), f"forewarn api not answering:\n{child.text()[-3000:]}"
        yield base
    finally:
        child.stop()


@pytest.fixture(scope="module")
def keys(services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The tenant's keys by role, made as 'forewarn key create' makes them."""
    url = services.database_url
    db.add_tenant(url, TENANT, "Console Mutual")
    return {role: db.create_api_key(url, TENANT, role, f"console test {role}")[1] for role in ("staff", "read_only")}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip(
            "Chromium and chromedriver are not installed: 'apt-get install chromium chromium-driver' "
            "(scripts/setup.sh does it when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    # the driver Debian ships next to its Chromium: Selenium Manager downloads nothing
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# ------------------------------------------------------------------ what a user sees


def until(
    driver: WebDriver, what: str, probe: Callable[[], Any], timeout: float = 20, why: Callable[[], str] | None = None
) -> Any:
    """Wait until ``probe`` answers something truthy (an element re-drawn meanwhile is looked up again);
    on a timeout, say what the page shows (and what ``why`` finds)."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    try:
        return wait.until(lambda _: probe())
    except WebDriverException as exc:
        page = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"timed out waiting for {what}; the page shows:\n{page}\n{why() if why else ''}") from exc


def pipeline(url: str, device: str) -> str:
    """Where a device's readings got to: stored, refused, warned."""
    key = (TENANT, device)
    stored = db.query(url, "SELECT count(*) AS n FROM readings WHERE tenant = %s AND device = %s", key)
    refused = db.query(url, "SELECT reason, detail FROM rejects WHERE tenant = %s AND device = %s", key)
    warned = db.query(url, "SELECT risk, status, opened_at FROM warnings WHERE tenant = %s AND device = %s", key)
    return f"readings stored: {stored[0]['n']}; refused: {refused}; warnings: {warned}"


def visible(driver: WebDriver, css: str) -> bool:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return bool(found) and found[0].is_displayed()


def sign_in(driver: WebDriver, key: str) -> None:
    field = driver.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.ID, "signin-button").click()


def queue_row(driver: WebDriver, device: str) -> WebElement | None:
    rows = driver.find_elements(By.CSS_SELECTOR, f'#queue-rows tr[data-device="{device}"]')
    return rows[0] if rows else None


def click_in_row(driver: WebDriver, device: str, action: str) -> None:
    """Click a row's button, looking it up again if the live queue re-drew the row meanwhile."""

    def attempt() -> bool:
        row = queue_row(driver, device)
        assert row is not None, f"no row of {device} in the queue"
        row.find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()
        return True

    until(driver, f"the {action} button of {device}", attempt, 10)


def kpi(driver: WebDriver, name: str) -> str:
    return driver.find_element(By.ID, f"kpi-{name}").get_attribute("data-value") or ""


def open_portfolio(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, '[data-nav="portfolio"]').click()
    until(driver, "the portfolio's figures", lambda: visible(driver, "#kpi-warnings"))


def publish_leak(services, device: str, start: datetime, minutes: int) -> None:  # type: ignore[no-untyped-def]
    publisher = Publisher(*host_port(services.mqtt_url, 1883), client_id="console-test-pub")
    publisher.start()
    topic = telemetry_topic(TENANT, device)
    t0 = int(start.timestamp() * 1000)
    try:
        publisher.flush(
            [
                publisher.publish(
                    topic,
                    orjson.dumps({"ts": t0 + m * 60_000, "seq": m, "metrics": {"water_leak": True, "flow_lpm": 4.0}}),
                )
                for m in range(minutes)
            ]
        )
    finally:
        publisher.stop()


# ------------------------------------------------------------------ the tests


def test_nothing_shows_before_sign_in_and_a_wrong_key_is_refused(services, api_url, keys, browser) -> None:  # type: ignore[no-untyped-def]
    browser.get(api_url + "/")  # the service's root leads to the console
    until(browser, "the sign-in form", lambda: visible(browser, "#api-key"))
    assert browser.current_url == api_url + "/console/"
    assert not visible(browser, "#app"), "the console must show nothing but the sign-in before a key is accepted"
    assert browser.find_elements(By.CSS_SELECTOR, "#main > *") == [], "no page may be built before sign-in"
    assert browser.execute_script("return sessionStorage.length") == 0

    for wrong in ("fw_00000000_" + "A" * 43, "not-a-key"):
        sign_in(browser, wrong)
        until(browser, "the refusal", lambda: "not valid" in browser.find_element(By.ID, "signin-error").text)
        assert not visible(browser, "#app")
        assert browser.find_elements(By.CSS_SELECTOR, "#main > *") == []

    # a key of the tenant gets in; signing out takes every page away again
    sign_in(browser, keys["read_only"])
    until(browser, "the queue", lambda: visible(browser, "#queue"))
    assert "read only" in browser.find_element(By.ID, "who").text
    browser.find_element(By.ID, "sign-out").click()
    until(browser, "the sign-in form again", lambda: visible(browser, "#api-key"))
    assert not visible(browser, "#app") and browser.find_elements(By.CSS_SELECTOR, "#main > *") == []

    # a key revoked while signed in: the next call sends the console back to sign-in
    key, text = db.create_api_key(services.database_url, TENANT, "staff", "revoked soon")
    sign_in(browser, text)
    until(browser, "the queue", lambda: visible(browser, "#queue"))
    db.revoke_api_key(services.database_url, key.id)
    until(browser, "the sign-in form after the revocation", lambda: visible(browser, "#api-key"), 15)
    assert browser.find_elements(By.CSS_SELECTOR, "#main > *") == []
    assert "not valid" in browser.find_element(By.ID, "signin-error").text


def test_the_desk_sees_a_warning_arrive_acts_on_it_and_the_portfolio_moves(  # type: ignore[no-untyped-def]
    services, sink, ingest_process, worker_process, api_url, keys, browser
) -> None:
    url = services.database_url
    device = "console-home"
    db.add_customer(url, "console-li", "李先生", "zh-CN", [sink.url("console-li")], tenant=TENANT)
    db.add_device(url, device, TENANT, "console-li", "home")
    time.sleep(2.5)  # ingest refreshes its registry on the first unknown device

    browser.get(api_url + "/console/")
    sign_in(browser, keys["staff"])
    until(browser, "the queue", lambda: visible(browser, "#queue"))
    assert "staff" in browser.find_element(By.ID, "who").text

    open_portfolio(browser)
    before = {name: kpi(browser, name) for name in ("warnings", "loss-avoided", "ack-rate")}
    assert before["warnings"] == "0", before

    browser.find_element(By.CSS_SELECTOR, '[data-nav="queue"]').click()
    until(browser, "the empty queue", lambda: visible(browser, "#queue-empty"))
    browser.execute_script("window.__sameDocument = true")  # gone if the page reloads

    # a leak sensor reports water on the floor: the warning arrives in the open queue by itself
    leak_started = datetime.now(UTC) - timedelta(minutes=5)
    publish_leak(services, device, leak_started, 5)
    row = until(
        browser, "the leak warning in the queue", lambda: queue_row(browser, device), 90, lambda: pipeline(url, device)
    )
    assert browser.execute_script("return window.__sameDocument === true"), "the queue must update without a reload"
    assert row.get_attribute("data-risk") == "water_leak"
    assert "Critical" in row.text or "Warning" in row.text
    announcer = browser.find_element(By.ID, "announcer")  # read by screen readers, not shown
    until(browser, "the announcement", lambda: "New warning" in (announcer.get_attribute("textContent") or ""), 5)
    warning_id = row.get_attribute("data-warning-id")
    until(  # the customer's phone got the message, and the queue says so by itself
        browser,
        "the notified status",
        lambda: (r := queue_row(browser, device)) is not None and r.get_attribute("data-status") == "notified",
        30,
    )

    # acknowledge it
    click_in_row(browser, device, "acknowledge")
    until(
        browser,
        "the acknowledged status",
        lambda: (r := queue_row(browser, device)) is not None and r.get_attribute("data-status") == "acknowledged",
    )
    stored = db.query(url, "SELECT status, acknowledged_by FROM warnings WHERE id = %s", (warning_id,))[0]
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"].startswith("staff:"), stored

    # record its outcome: the plumber came in time, a loss of about 50,000 CNY avoided
    click_in_row(browser, device, "outcome")
    dialog = until(browser, "the outcome dialog", lambda: browser.find_element(By.CSS_SELECTOR, "dialog[open]"))
    dialog.find_element(By.CSS_SELECTOR, 'input[name="outcome"][value="loss_avoided"]').click()
    dialog.find_element(By.ID, "outcome-avoided").send_keys("50000")
    loss_at = browser.find_element(By.ID, "outcome-loss-at")
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
        loss_at,
        (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),  # the browser's clock is ours
    )
    dialog.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    until(browser, "the dialog to close", lambda: not browser.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    until(
        browser,
        "the outcome in the queue",
        lambda: (
            (r := queue_row(browser, device)) is not None
            and r.find_element(By.CSS_SELECTOR, "td.outcome").get_attribute("data-outcome") == "loss_avoided"
        ),
    )
    assert "Loss avoided" in queue_row(browser, device).text  # type: ignore[union-attr]

    # the warning's story: who acknowledged it, the message to the customer, the outcome
    click_in_row(browser, device, "details")
    story = until(browser, "the warning's details", lambda: browser.find_element(By.ID, "warning-details"))
    assert "acknowledge" in story.text and "staff:console test staff" in story.text
    assert "customer" in story.text and "sent" in story.text
    assert "Loss avoided" in story.find_element(By.ID, "details-outcome").text
    assert "50,000" in story.find_element(By.ID, "details-outcome").text
    story.find_element(By.CSS_SELECTOR, ".buttons button").click()
    until(browser, "the details to close", lambda: not browser.find_elements(By.ID, "warning-details"))

    # the device's page charts its readings with the warning marked
    queue_row(browser, device).find_element(By.LINK_TEXT, device).click()  # type: ignore[union-attr]
    chart = until(
        browser,
        "the water-leak chart",
        lambda: browser.find_elements(By.CSS_SELECTOR, 'figure[data-metric="water_leak"] svg'),
    )[0]
    assert chart.find_elements(By.CSS_SELECTOR, f'g.marker[data-warning="{warning_id}"]'), "the warning is marked"
    assert chart.find_elements(By.CSS_SELECTOR, "path.series")
    assert browser.find_elements(By.CSS_SELECTOR, f'#device-warnings tr[data-warning-id="{warning_id}"]')

    # the portfolio counts the warning, its acknowledgement and the loss it avoided
    open_portfolio(browser)
    until(browser, "the new warning in the portfolio", lambda: kpi(browser, "warnings") == "1", 15)
    assert float(kpi(browser, "ack-rate")) == 1.0
    assert float(kpi(browser, "loss-avoided")) == 50000.0
    assert "50,000" in browser.find_element(By.ID, "kpi-loss-avoided").text
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-loss-avoided svg rect.bar"), "loss avoided by month"
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-lead-time svg rect.bar"), "the lead time is counted"
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-ack-rate svg"), "acknowledgement rate by risk"

    # the same desk in Chinese
    Select(browser.find_element(By.ID, "app-language")).select_by_value("zh-CN")
    until(
        browser, "the Chinese portfolio", lambda: "组合分析" in browser.find_element(By.CSS_SELECTOR, "#main h1").text
    )
    assert browser.find_element(By.CSS_SELECTOR, "html").get_attribute("lang") == "zh-CN"
    assert "避免损失" in browser.find_element(By.ID, "kpi-loss-avoided").text

    # a read-only key sees the same queue, and no button that would change it
    browser.find_element(By.ID, "sign-out").click()
    until(browser, "the sign-in form", lambda: visible(browser, "#api-key"))
    sign_in(browser, keys["read_only"])
    row = until(browser, "the warning, read only", lambda: queue_row(browser, device))
    assert "只读" in browser.find_element(By.ID, "main").text
    actions = [b.get_attribute("data-action") for b in row.find_elements(By.CSS_SELECTOR, "button")]
    assert actions == ["details"], actions
