"""Without playwright or Chromium, `--browsers` says in one line what to install."""

from __future__ import annotations

import sys

import pytest

from queue_manager.rehearsal import browser
from queue_manager.rehearsal.browser import BrowserMissing, check_browser


def test_without_playwright_it_says_to_install_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)
    with pytest.raises(BrowserMissing, match=r"pip install 'comfy-workshop\[rehearse\]'"):
        check_browser()


def test_without_chromium_it_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(BrowserMissing, match="apt-get install chromium"):
        check_browser()
