"""The API explorer at /docs, used as accounting staff use it: in a real browser.

Headless Chromium (Debian's package, driven by Selenium through Debian's chromedriver) opens
/docs on the live service, authorizes with a key, reads the seed 001 order and tries the seed
001 correction as a dry run, then reads what the page shows. The page loads everything from
the service itself: no request leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from app.api import examples
from tests.contract.conftest import REQUEST_TIMEOUT, LiveServer, Seed001

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
    "--window-size=1400,2000",
)
WAIT = 30
ORDER = (
    "/accounting/v1/businesses/{businessCode}/customers/{customerNumber}/orders/{orderReference}"
)
INVOICE = ORDER + "/invoices/{invoiceReference}"
SEED_PATH = {
    "businessCode": examples.BUSINESS,
    "customerNumber": examples.CUSTOMER,
    "orderReference": examples.ORDER_REFERENCE,
    "invoiceReference": examples.INVOICE_REFERENCE,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("needs Debian's chromium and chromium-driver (scripts/test.sh installs them)")
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Operation:
    """One operation's panel in Swagger UI, opened and ready to try out."""

    driver: webdriver.Chrome
    block: WebElement

    def fill(self, **values: str) -> None:
        for name, value in values.items():
            row = self.block.find_element(By.CSS_SELECTOR, f'tr[data-param-name="{name}"]')
            selects = row.find_elements(By.TAG_NAME, "select")
            if selects:
                Select(selects[0]).select_by_visible_text(value)
                continue
            field = row.find_element(By.TAG_NAME, "input")
            field.clear()
            field.send_keys(value)

    def request_body(self) -> dict[str, Any]:
        text = self.block.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
        loaded: dict[str, Any] = json.loads(text.get_attribute("value") or "null")
        return loaded

    def execute(self) -> tuple[str, dict[str, Any]]:
        """Press Execute; the status and the body the page shows for the answer."""
        self.block.find_element(By.CSS_SELECTOR, "button.execute").click()
        live = WebDriverWait(self.driver, WAIT).until(
            lambda _: self.block.find_element(
                By.CSS_SELECTOR, ".live-responses-table tbody tr.response"
            )
        )
        status = live.find_element(By.CSS_SELECTOR, ".response-col_status").text.strip()
        shown = live.find_element(By.CSS_SELECTOR, ".response-col_description pre").text
        return status, json.loads(shown)


@dataclass
class Explorer:
    driver: webdriver.Chrome
    base_url: str

    def open(self) -> None:
        self.driver.get(f"{self.base_url}/docs")
        WebDriverWait(self.driver, WAIT).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
        )

    def authorize(self, key: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, ".btn.authorize").click()
        field = WebDriverWait(self.driver, WAIT).until(
            ec.visibility_of_element_located((By.ID, "api_key_value"))
        )
        field.send_keys(key)
        form = field.find_element(By.XPATH, "./ancestor::form")
        form.find_element(By.CSS_SELECTOR, "button.authorize").click()
        form.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    def operation(self, method: str, path: str) -> Operation:
        summary = self.driver.find_element(
            By.CSS_SELECTOR, f'.opblock-{method} .opblock-summary-path[data-path="{path}"]'
        )
        block = summary.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock ')]")
        self.driver.execute_script("arguments[0].scrollIntoView();", summary)
        summary.click()
        WebDriverWait(self.driver, WAIT).until(
            lambda _: block.find_elements(By.CSS_SELECTOR, "button.execute")
        )
        return Operation(self.driver, block)

    def resources(self) -> list[str]:
        names: list[str] = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        return names

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


def test_staff_authorize_read_the_order_and_try_the_correction_as_a_dry_run(
    browser: webdriver.Chrome, live_server: LiveServer, seed_001: Seed001
) -> None:
    page = Explorer(browser, live_server.url)
    page.open()
    page.authorize(seed_001.key)

    read = page.operation("get", ORDER)
    read.fill(**{k: v for k, v in SEED_PATH.items() if k != "invoiceReference"})
    read_status, order = read.execute()

    correct = page.operation("put", INVOICE)
    correct.fill(**SEED_PATH, dryRun="true")
    prefilled = correct.request_body()
    dry_status, tried = correct.execute()

    assert read_status == "200"
    assert order["orderReference"] == examples.ORDER_REFERENCE
    assert order["customerNumber"] == examples.CUSTOMER
    assert [p["state"] for p in order["positions"]] == ["invoiced"]
    assert prefilled["goodwillReference"] == examples.CREDIT_NOTE_REFERENCE
    assert prefilled["order"]["billToAddress"]["street"] == "Heidestr."
    assert dry_status == "200"
    assert tried["dryRun"] is True
    assert tried["changed"] is True
    assert (tried["before"]["version"], tried["after"]["version"]) == (1, 2)
    assert tried["creditNoteReference"] == examples.CREDIT_NOTE_REFERENCE
    assert tried["refund"] is None
    invoice = requests.get(
        seed_001.invoice_url(), headers=seed_001.headers, timeout=REQUEST_TIMEOUT
    )
    assert invoice.json()["currentVersion"] == 1
    assert all(url.startswith(f"{live_server.url}/") for url in page.resources())
    assert page.console_errors() == []


def test_the_explorer_page_allows_nothing_from_elsewhere(live_server: LiveServer) -> None:
    page = requests.get(f"{live_server.url}/docs", timeout=REQUEST_TIMEOUT)
    script = requests.get(
        f"{live_server.url}/docs/assets/swagger-ui-bundle.js", timeout=REQUEST_TIMEOUT
    )

    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    assert (
        requests.get(f"{live_server.url}/docs/assets/..%2Fpyproject.toml", timeout=10).status_code
        == 404
    )
