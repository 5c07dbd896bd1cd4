"""One headless Chromium per test (Debian's, never a downloaded one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.pages import CHROMIUM, check_chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    check_chromium()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            await b.close()
