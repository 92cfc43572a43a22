"""The HTML report: one self-contained page; checked as text, and in a real headless Chromium where one is
installed (Debian's `chromium` and `chromium-driver`, driven by Selenium)."""

from __future__ import annotations

import importlib.util
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandrun.app import app
from tests.factories import PNG_1X1

RECIPE = f"""
# %% Setup
class Picture:
    def _repr_png_(self):
        return {PNG_1X1!r}
    def __repr__(self):
        return "Picture()"
display(Picture())
print("shown")

# %% Expected to print something else
print("actual text")
# expect stdout:
# expected text

# %% Breaks
{{}}["missing"]

# %% Fine
6 * 7
"""
HOSTILE = """
# %% Markup that tries to run script
class Evil:
    def _repr_html_(self):
        return "<b>bold</b><script>parent.document.title = 'owned'</script><img src=x onerror=stop()>"
Evil()
"""


@pytest.fixture(autouse=True)
def restore_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def report(tmp_path: Path, source: str, name: str = "r.py") -> Path:
    recipe = tmp_path / name
    recipe.write_text(source)
    out = tmp_path / "out.html"
    runner = CliRunner(env={"SANDRUN_BACKEND": "process"})
    result = runner.invoke(
        app, ["run", str(recipe), "--keep-going", "--report", str(out)], catch_exceptions=False
    )
    assert result.exit_code in (0, 1), result.stderr
    return out


def test_the_page_is_self_contained_and_escapes_everything(tmp_path: Path) -> None:
    html = report(tmp_path, RECIPE + HOSTILE).read_text()
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    assert "script-src" not in html and "default-src 'none'" in html  # no script may run, none is fetched
    assert 'src="data:image/png;base64,' in html
    assert "http://" not in html and "https://" not in html
    assert "<script>" not in html  # the cell's markup sits escaped inside a sandboxed frame's srcdoc
    assert 'sandbox="" srcdoc="&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;' in html
    assert "-expected text\n+actual text" in html and "KeyError" in html


def browser() -> Any:
    """A headless Chromium, or a skip that says what is missing."""
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("selenium is not installed (pip install selenium)")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver to run this test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=390,844",
    ):
        options.add_argument(flag)  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    phone = {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0}}
    options.add_experimental_option("mobileEmulation", phone)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_in_a_browser_it_loads_cleanly_shows_images_and_the_failure(tmp_path: Path) -> None:
    page = report(tmp_path, RECIPE)
    chrome = browser()
    try:
        chrome.get(page.as_uri())
        errors = [entry["message"] for entry in chrome.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        images = chrome.execute_script(
            "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert images == [[True, 1, 1]]  # every image decodes
        failed = chrome.find_element("css selector", ".cell.failed")
        assert failed.is_displayed()
        diff = failed.find_element("css selector", "pre.diff")
        assert diff.is_displayed() and "-expected text" in diff.text and "+actual text" in diff.text
        width, screen = chrome.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert width <= screen <= 400  # readable on a phone: nothing wider than its screen
        passed = chrome.find_element("css selector", ".cell.passed")
        assert passed.is_displayed()
        chrome.find_element("css selector", "label.switch").click()  # failures only
        assert not passed.is_displayed() and failed.is_displayed()
    finally:
        chrome.quit()


def test_in_a_browser_displayed_markup_runs_no_script(tmp_path: Path) -> None:
    page = report(tmp_path, HOSTILE)
    chrome = browser()
    try:
        chrome.get(page.as_uri())
        title = chrome.title
        frame = chrome.find_element("css selector", "iframe")
        chrome.switch_to.frame(frame)
        assert chrome.find_element("css selector", "b").text == "bold"  # control: the markup is shown
        chrome.switch_to.default_content()
        assert chrome.title == title and "owned" not in title
        # control: the same page without its defences (no policy, a frame that may run script) is owned
        html = page.read_text()
        open_page = page.with_name("open.html")
        open_page.write_text(
            html.replace('<meta http-equiv="Content-Security-Policy"', "<meta x").replace(
                '<iframe sandbox=""', "<iframe"
            )
        )
        chrome.get(open_page.as_uri())
        assert chrome.title == "owned"
    finally:
        chrome.quit()
