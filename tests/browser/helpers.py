"""What the browser tests share: the platform they drive, signing in, screenshots, reading figures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


@dataclass
class Platform:
    base: str
    data_dir: Path
    log: Path

    def credentials(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for line in (self.data_dir / "demo-credentials.txt").read_text().splitlines():
            role, email, password = line.split()
            out.setdefault(role, (email, password))
        return out


async def shot(page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (kept by CI; ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(page, email: str, password: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/$"))


def money(text: str) -> Decimal:
    """'$48,000' -> Decimal('48000')."""
    return Decimal(re.sub(r"[^0-9.\-]", "", text) or "0")
