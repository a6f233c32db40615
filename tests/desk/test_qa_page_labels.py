"""Acceptance pass: a bar too short for its production's name says so with an ellipsis.

The week view cut "Production 05" to "Production 0", which reads as another production.
"""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.desk.conftest import PASSWORDS, Desk
from tests.desk.test_page import WEEK


def _hold(desk: Desk, production: str, start: str, hours: int) -> str:
    client = desk.client("producer")
    made = client.post("/api/v1/bookings", json={
        "production": production, "duration_minutes": hours * 60, "priority": 1,
        "earliest_start": start, "latest_end": "2031-03-09T00:00:00+08:00",
        "stage": "HP-1", "start": start})
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    held = client.post(f"/api/v1/bookings/{booking_id}/hold", json={})
    assert held.status_code == 200, held.text
    return str(booking_id)


def test_short_bar_label_ends_in_an_ellipsis(browser: Browser, desk: Desk) -> None:
    short = _hold(desk, "Production 05 second unit", "2031-03-04T08:00:00+08:00", 9)
    wide = _hold(desk, "Dune", "2031-03-06T08:00:00+08:00", 24)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(desk.url + "/" + WEEK)
        page.get_by_label("User name").fill("producer")
        page.get_by_label("Password").fill(PASSWORDS["producer"])
        page.locator("#login-submit").click()
        svg = page.locator("#timeline svg")
        expect(svg).to_be_visible()
        cut = svg.locator(f"[data-booking='{short}'] text").text_content() or ""
        assert cut.endswith("…"), cut
        assert cut.startswith("1 Prod") and len(cut) < len("1 Production 05 second unit")
        expect(svg.locator(f"[data-booking='{wide}'] text")).to_have_text("1 Dune")
    finally:
        context.close()


def test_page_load_asks_for_nothing_missing(browser: Browser, desk: Desk) -> None:
    """Chromium asked for /favicon.ico (404, a console error on every load) before the page
    named its own icon."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(desk.url + "/" + WEEK)
        page.get_by_label("User name").fill("producer")
        page.get_by_label("Password").fill(PASSWORDS["producer"])
        page.locator("#login-submit").click()
        expect(page.locator("#timeline svg")).to_be_visible()
        page.wait_for_timeout(500)
        assert [e for e in errors if "404" in e] == [], errors
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert desk.anonymous().get(icon).status_code == 200
    finally:
        context.close()
