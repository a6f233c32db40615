"""The desk page in Debian's Chromium (Playwright) against a running desk on loopback.

A producer signs in, books (request + hold), sees refusals explained in plain words, confirms,
previews and applies an outage re-plan, switches to Chinese (remembered across a reload), and
opens the render farm: unavailable, then a real controller with a rented pool. The browser
runs in New York time, so every time on the page must be the site's, with the zone named.
Screenshots go to docs/screenshots/desk-*.png when STAGECTL_SCREENSHOTS=1 (scripts/screenshots.sh
sets it), else to a temporary folder, so a test run leaves the tree as it found it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.desk.conftest import PASSWORDS, Desk, Template, start_desk

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots" if os.environ.get("STAGECTL_SCREENSHOTS") == "1" else \
    Path(tempfile.gettempdir()) / "stagectl-desk-shots"
WEEK = "#date=2031-03-03&span=week"
SHANGHAI = "Asia/Shanghai (UTC+08:00)"


class Tab:
    """One browser tab on the desk; JavaScript errors on the page fail the test."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           timezone_id="America/New_York", locale="en-US")
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = url

    def open(self, fragment: str = WEEK) -> Page:
        self.page.goto(self.url + "/" + fragment)
        return self.page

    def login(self, user: str) -> None:
        page = self.page
        expect(page.locator("#login")).to_be_visible()
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(PASSWORDS[user])
        page.locator("#login-submit").click()
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#timeline svg")).to_be_visible()

    def request(self, production: str, *, hours: float = 8, earliest: str, latest: str,
                requires: tuple[str, ...] = (), stages: tuple[str, ...] = (),
                wish: tuple[str, str] | None = None, hold: bool = True) -> None:
        page = self.page
        page.locator("#req-production").fill(production)
        page.locator("#req-duration").fill(str(hours))
        page.locator("#req-earliest").fill(earliest)
        page.locator("#req-latest").fill(latest)
        for box in page.locator("#req-requires input, #req-stages input").all():
            box.uncheck()
        for cap in requires:
            page.locator(f"#req-requires input[value='{cap}']").check()
        for sid in stages:
            page.locator(f"#req-stages input[value='{sid}']").check()
        page.locator("#req-wish-stage").select_option(wish[0] if wish else "")
        page.locator("#req-wish-start").fill(wish[1] if wish else "")
        page.locator("#req-hold-now").set_checked(hold)
        page.locator("#req-submit").click()
        # done when the page says so (it clears the last message on submit)
        expect(page.locator("#flash .message, #error .message")).to_be_visible()
        page.wait_for_function("() => !document.querySelector('#timeline[aria-busy]')")

    def selected_id(self) -> str:
        value = self.page.evaluate("window.DESK.state.selected && window.DESK.state.selected.id")
        assert isinstance(value, str), value
        return value

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(SHOTS / name), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"JavaScript errors on the page: {self.errors}"


@pytest.fixture
def tab(browser: Browser, desk: Desk) -> Iterator[Tab]:
    t = Tab(browser, desk.url)
    try:
        yield t
    finally:
        t.close()


def flash(page: Page) -> str:
    box = page.locator("#flash .message")
    expect(box).to_be_visible()
    return box.inner_text()


def refusal(page: Page) -> str:
    box = page.locator("#error .message.error")
    expect(box).to_be_visible()
    return box.inner_text()


def bar(page: Page, booking: str) -> Any:
    return page.locator(f"#timeline svg [data-booking='{booking}']")


def test_book_explain_confirm_replan_and_chinese(tab: Tab, desk: Desk) -> None:
    page = tab.open()
    tab.login("engineer")
    expect(page.locator("#who")).to_have_text("engineer (engineer)")
    svg = page.locator("#timeline svg")
    # one row per stage, grouped by site, the site's zone named in its header
    for sid in ("HP-1", "HP-2", "NS-1", "SZ-3"):
        expect(svg.locator(f"g.stage-row[data-stage='{sid}']")).to_have_count(1)
    expect(svg.locator(".site-name").first).to_have_text(f"Huangpu · times in {SHANGHAI}")
    expect(page.locator("#tl-range")).to_have_text("Mon 3 Mar to Sun 9 Mar")
    # HP-2's stored outage (2031-03-07 00:00-04:00 Shanghai) is drawn on its row
    expect(svg.locator("g.stage-row[data-stage='HP-2'] rect.outage")).to_have_count(1)
    expect(page.locator("#req-zone")).to_have_text(f"Times are read in {SHANGHAI}.")

    # 1. a capability no allowed stage has: the request is kept, the hold refused, explained
    tab.request("Volumetric test", hours=4, earliest="2031-03-04T08:00",
                latest="2031-03-04T20:00", requires=("volumetric",), stages=("HP-1",))
    why = refusal(page)
    assert "HP-1 lacks volumetric" in why, why
    assert "NS-1, NS-3, SZ-1 and SZ-2 have it but are not allowed" in why, why
    expect(page.locator("#error .explanation li")).to_have_count(1)
    vol = tab.selected_id()
    expect(page.locator(f"#tl-waiting tr[data-booking='{vol}']")).to_have_count(1)

    # 2. book: request + hold at the wished-for slot; a second hold on it ranks 2
    tab.request("Dune", earliest="2031-03-04T08:00", latest="2031-03-04T20:00",
                requires=("arm",), wish=("HP-2", "2031-03-04T08:00"))
    said = flash(page)
    dune = tab.selected_id()
    assert said.startswith(f"Request {dune} recorded and held (hold 1)."), said
    # typed in the site's zone (the browser is in New York), sent with the site's offset
    stored = desk.client("viewer").get(f"/api/v1/bookings/{dune}").json()
    assert (stored["earliest_start"], stored["start"]) == (
        "2031-03-04T08:00:00+08:00", "2031-03-04T08:00:00+08:00"), stored
    expect(bar(page, dune)).to_have_class(re.compile(r"\bhold\b"))
    expect(page.locator(f"#tl-table tr[data-booking='{dune}'] .pill")).to_have_text("hold 1")
    # the table shows the site's time (the browser is in New York), with its zone
    cells = page.locator(f"#tl-table tr[data-booking='{dune}'] td").all_inner_texts()
    assert cells[4:7] == ["Tue, 4 Mar 2031, 08:00", "Tue, 4 Mar 2031, 16:00", SHANGHAI], cells

    tab.request("Car advert", hours=6, earliest="2031-03-04T08:00", latest="2031-03-04T20:00",
                requires=("arm",), wish=("HP-2", "2031-03-04T08:00"))
    assert "(hold 2)" in flash(page)
    car = tab.selected_id()
    tab.request("Music video", hours=10, earliest="2031-03-05T08:00",
                latest="2031-03-05T20:00", requires=("led_8k",),
                wish=("HP-3", "2031-03-05T09:00"))
    music = tab.selected_id()
    # the bar says what it is, in words, for a screen reader
    label = bar(page, dune).get_attribute("aria-label")
    assert label == (f"Dune, hold 1, HP-2, Tue, 4 Mar 2031, 08:00 {SHANGHAI} "
                     "to Tue, 4 Mar 2031, 16:00"), label

    # 3. confirm from the timeline, with the keyboard
    bar(page, dune).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#sel-body dd").first).to_have_text(dune)
    page.locator("#act-confirm").click()
    assert flash(page).startswith(f"{dune} is confirmed.")
    expect(bar(page, dune)).to_have_class(re.compile(r"\bconfirmed\b"))
    # the second hold on that time is refused by the confirmation
    expect(page.locator(f"#tl-table tr[data-booking='{car}'] .pill")).to_have_text("refused")
    expect(bar(page, car)).to_have_count(0)
    # a changeover follows the confirmed booking on its row
    expect(svg.locator("g.stage-row[data-stage='HP-2'] rect.changeover")).to_have_count(1)

    # 4. a hold over the confirmed booking: refused, naming it, its time and the changeover
    tab.request("Pop promo", hours=4, earliest="2031-03-04T08:00", latest="2031-03-04T20:00",
                requires=("arm",), wish=("HP-2", "2031-03-04T09:00"))
    why = refusal(page)
    assert f"HP-2 is taken by {dune} (Dune, confirmed) 2031-03-04 08:00–16:00" in why, why
    assert "90-minute changeover" in why, why
    pop = tab.selected_id()

    # 5. outage re-plan: preview (nothing changes), then apply
    page.locator("#out-stage").select_option("HP-2")
    page.locator("#out-start").fill("2031-03-04T06:00")
    page.locator("#out-end").fill("2031-03-04T12:00")
    page.locator("#out-reason").fill("LED processor swap")
    page.locator("#out-preview").click()
    moved = page.locator("#out-result ul.moved li")
    expect(moved).to_have_count(1)
    assert re.match(rf"{dune} \(Dune\): HP-2 Tue, 4 Mar 2031, 08:00 → \S+ "
                    rf"Tue, 4 Mar 2031, \d\d:\d\d " + re.escape(SHANGHAI),
                    moved.inner_text()), moved.inner_text()
    expect(page.locator("#out-result")).to_contain_text("Preview only")
    client = desk.client("viewer")
    assert client.get(f"/api/v1/bookings/{dune}").json()["stage"] == "HP-2"
    expect(page.locator("#error .message")).to_have_count(0)
    tab.shot("desk-timeline-en.png")

    page.locator("#out-apply").click()
    assert flash(page).startswith("Re-plan applied.")
    moved_to = client.get(f"/api/v1/bookings/{dune}").json()["stage"]
    assert moved_to != "HP-2"
    expect(page.locator(f"#tl-table tr[data-booking='{dune}'] td").nth(3)).to_have_text(moved_to)
    expect(svg.locator(f"g.stage-row[data-stage='{moved_to}'] [data-booking='{dune}']")) \
        .to_have_count(1)
    expect(svg.locator("g.stage-row[data-stage='HP-2'] rect.outage")).to_have_count(2)

    # 6. Chinese: every label switches, the choice survives a reload (still signed in)
    page.locator("#lang").click()
    expect(page.locator("#tl-title")).to_have_text("摄影棚排期")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.reload()
    expect(page.locator("#timeline svg")).to_be_visible()
    expect(page.locator("#tl-title")).to_have_text("摄影棚排期")
    expect(page.locator("#who")).to_have_text("engineer（工程师）")
    expect(page.locator(f"#tl-table tr[data-booking='{dune}'] .pill")).to_have_text("已确认")
    expect(page.locator(f"#tl-table tr[data-booking='{music}'] .pill")).to_have_text("第 1 预留")
    expect(svg.locator(".site-name").first).to_have_text(
        "Huangpu · 时间按 Asia/Shanghai（UTC+08:00）")
    expect(page.locator("#req-submit")).to_have_text("提交申请")
    # a refusal in Chinese: the server's message_zh, the explanation as sent
    page.locator(f"#tl-waiting tr[data-booking='{vol}'] button").click()
    page.locator("#act-hold").click()
    why = refusal(page)
    assert why.startswith("被拒绝："), why
    # the sentences the desk gives in Chinese (its English ones where it has none)
    again = desk.client("engineer").post(f"/api/v1/bookings/{vol}/hold", json={})
    assert again.status_code == 409, again.text
    details = again.json()["error"]["details"]
    sentences = details.get("explanation_zh") or details["explanation"]
    assert sentences and all(s in why for s in sentences), (why, sentences)
    assert why.count(sentences[0]) == 1, why  # said once, not in the heading and the list
    assert "HP-1" in why and "volumetric" in why
    tab.shot("desk-timeline-zh.png")
    # actions after the reload still carry the session's CSRF token
    page.locator(f"#tl-table tr[data-booking='{music}'] button").click()
    page.locator("#act-release").click()
    assert flash(page).startswith(f"{music} 已释放")
    # cancel asks first, in the page's language
    page.locator(f"#tl-table tr[data-booking='{pop}'] button").click()
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.locator("#act-cancel").click()
    assert flash(page).startswith(f"{pop} 已取消")
    assert asked == [f"取消预订 {pop}？取消后无法恢复。"]
    expect(page.locator(f"#tl-table tr[data-booking='{pop}'] .pill")).to_have_text("已取消")

    page.locator("#lang").click()
    expect(page.locator("#tl-title")).to_have_text("Stage timeline")
    page.locator("#logout").click()
    expect(page.locator("#login")).to_be_visible()
    assert desk.anonymous().get("/api/v1/me").status_code == 401


def test_viewer_reads_but_has_no_forms(tab: Tab) -> None:
    page = tab.open()
    tab.login("viewer")
    expect(page.locator("#req-form")).to_be_hidden()
    expect(page.locator("#out-form")).to_be_hidden()
    expect(page.locator("#who")).to_have_text("viewer (viewer)")


def test_a_second_tab_can_change_things_or_asks_to_sign_in(tab: Tab) -> None:
    tab.open()
    tab.login("producer")
    other = tab.context.new_page()  # same cookie, its own sessionStorage
    other.on("pageerror", lambda e: tab.errors.append(str(e)))
    other.goto(tab.url + "/" + WEEK)
    me = other.evaluate("fetch('/api/v1/me').then(r => r.json())")
    if me.get("csrf"):
        expect(other.locator("#timeline svg")).to_be_visible()
    else:  # it could not send X-CSRF-Token: it asks to sign in rather than fail later
        expect(other.locator("#login")).to_be_visible()
    other.close()


def test_wrong_password_and_lost_csrf_are_explained(tab: Tab) -> None:
    page = tab.open()
    page.get_by_label("User name").fill("producer")
    page.get_by_label("Password").fill("not-the-password")
    page.locator("#login-submit").click()
    text = refusal(page)
    assert "Refused:" in text and "password" in text.lower(), text
    expect(page.locator("#login")).to_be_visible()
    tab.login("producer")
    # the page forgets its CSRF token: the desk refuses, the page says why in words
    page.evaluate("window.DESK.state.csrf = 'forged'")
    tab.request("Dune", earliest="2031-03-04T08:00", latest="2031-03-04T20:00")
    box = page.locator("#error .message.error")
    expect(box).to_have_attribute("data-code", "csrf")
    assert len(box.inner_text()) > len("Refused: ") + 10


def test_farm_unavailable_is_a_clear_message(tab: Tab) -> None:
    page = tab.open()
    tab.login("producer")
    page.locator("#tab-farm").click()
    box = page.locator("#farm-unavailable")
    expect(box).to_be_visible()
    expect(box).to_contain_text("The render farm is not available")
    expect(box).to_contain_text("Bookings still work")
    page.locator("#lang").click()
    expect(box).to_contain_text("渲染农场不可用")
    page.locator("#tab-timeline").click()
    expect(page.locator("#timeline svg")).to_be_visible()


# ---------------------------------------------------------------------------------- the farm

def _farm_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STAGECTL_TZ": "Asia/Shanghai"}
    env.pop("STAGECTL_FARM_CONTROLLER", None)
    return subprocess.run([sys.executable, "-m", "stagectl", "farm", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def _job_toml(path: Path, job_id: str, frames: int, sleep: float, deadline: float) -> Path:
    argv = ["{python}", "-m", "tests.dispatch.work", "--frame", "{frame_start}",
            "--to-frame", "{frame_end}", "--out", "{output}", "--sleep", str(sleep)]
    path.write_text("\n".join([
        "[[jobs]]", f'id = "{job_id}"', "frame_start = 1", f"frame_end = {frames}",
        "chunk_size = 1", f"argv = {argv!r}".replace("'", '"'),
        f'output = "{job_id}/f.####.png"', f"estimate_s = {sleep + 0.5}", "vram_gb = 24",
        f"deadline_utc = {deadline:.0f}"]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def farm_controller(tmp_path: Path) -> Iterator[tuple[str, dict[str, float]]]:
    """A real `stagectl farm controller` with a rented local pool (CNY per GPU hour)."""
    from scheduler.dispatch.client import ControllerUnavailable, FarmClient
    from tests.dispatch.conftest import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "farm.toml"
    config.write_text(
        "[controller]\nheartbeat_s = 0.3\nplan_time_limit_s = 0.3\nreplan_min_interval_s = 0.5\n"
        "pool_poll_s = 0.2\n\n[[pools]]\nid = \"hpc-h100\"\nbackend = \"local\"\nmax_slots = 2\n"
        f"vram_gb = 80\ncost_per_gpu_hour_cny = 28.5\nworkdir = \"{tmp_path / 'pool'}\"\n",
        encoding="utf-8")
    (tmp_path / "out").mkdir()
    ctl = subprocess.Popen(
        [sys.executable, "-m", "stagectl", "farm", "controller", "--db",
         str(tmp_path / "farm.sqlite"), "--bind", address, "--config", str(config)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 20
        with FarmClient(address, timeout_s=0.5) as client:
            while True:
                try:
                    client.request("ping")
                    break
                except ControllerUnavailable:
                    assert time.monotonic() < deadline and ctl.poll() is None, "no controller"
        now = time.time()
        deadlines = {"sh010-comp-v003": now + 6 * 3600,  # hours to spare
                     "sh020-fx-v001": now - 2 * 3600}  # already late
        for job_id, due in deadlines.items():
            frames, sleep = 40, 0.5
            done = _farm_cli("submit", str(_job_toml(tmp_path / f"{job_id}.toml", job_id,
                                                     frames, sleep, due)),
                             "--controller", address, "--output-root", str(tmp_path / "out"))
            assert done.returncode == 0, done.stderr
        yield address, deadlines
    finally:
        ctl.terminate()
        try:
            ctl.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.communicate()


def test_farm_view_with_a_real_controller(browser: Browser, desk_template: Template,
                                          tmp_path: Path,
                                          farm_controller: tuple[str, dict[str, float]]) -> None:
    address, deadlines = farm_controller
    (tmp_path / "desk").mkdir()
    server = start_desk(desk_template, tmp_path / "desk", farm_controller=address,
                        farm_timeout_s=5.0)
    tab = Tab(browser, server.url)
    try:
        page = tab.open()
        tab.login("producer")
        page.locator("#tab-farm").click()
        rows = page.locator("table.farm tbody tr")
        expect(rows).to_have_count(2)
        # wait until frames are rendering, then look again
        deadline = time.monotonic() + 30
        while True:
            page.locator("#farm-refresh").click()
            expect(page.locator("table.farm")).to_be_visible()
            values = [int(v or 0) for v in page.locator(".progress").evaluate_all(
                "els => els.map(e => e.getAttribute('aria-valuenow'))")]
            if any(0 < v < 100 for v in values):
                break
            assert time.monotonic() < deadline, f"no progress: {values}"
            time.sleep(0.5)
        on_time = page.locator("tr[data-job='sh010-comp-v003']")
        late = page.locator("tr[data-job='sh020-fx-v001']")
        expect(late).to_have_class("late")
        expect(late.locator(".pill")).to_contain_text("late by")
        expect(on_time.locator(".pill")).to_contain_text("to spare")
        # the deadline as the site reads it (the browser is in New York)
        due = datetime.fromtimestamp(round(deadlines["sh010-comp-v003"]),
                                     ZoneInfo("Asia/Shanghai"))
        expect(on_time.locator("td").nth(3)).to_have_text(
            f"{due:%a} {due.day} {due:%b}, {due:%H:%M}")
        expect(page.locator("#farm-body")).to_contain_text(f"Times in {SHANGHAI}.")
        cost = page.locator("#farm-cost")
        expect(cost).to_contain_text("hpc-h100")
        expect(cost).to_contain_text("¥28.50 per GPU hour")
        assert re.search(r"Forecast\s+¥\d", cost.inner_text()), cost.inner_text()
        tab.shot("desk-farm-en.png")
        page.locator("#lang").click()
        expect(page.locator("#farm-title")).to_have_text("渲染农场")
        expect(late.locator(".pill")).to_contain_text("将延误")
    finally:
        tab.close()
        server.stop()


# ------------------------------------------------------------------------- accessible basics

UNLABELLED = """() => [...document.querySelectorAll('input, select, button')]
  .filter(e => e.offsetParent !== null)
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !(e.textContent || '').trim())
  .map(e => e.outerHTML.slice(0, 80))"""

# WCAG 2 contrast of every visible text's colour against the background it sits on.
LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest('svg') || el.offsetParent === null) continue;
    const fg = rgb(getComputedStyle(el).color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) bad.push(`${node.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


def test_labels_keyboard_and_contrast(tab: Tab) -> None:
    page = tab.open()
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    # the checks see what they are for: grey on white, an input with no label
    page.evaluate("""() => { const p = document.createElement('p'); p.id = 'probe';
      p.style.color = '#aaaaaa'; p.textContent = 'pale'; document.body.append(p);
      document.body.append(Object.assign(document.createElement('input'), {id: 'bare'})); }""")
    assert page.evaluate(LOW_CONTRAST) == ["pale: 2.13"]  # on the page background #f4f5f7
    assert page.evaluate(UNLABELLED) == ['<input id="bare">']
    page.evaluate("document.getElementById('probe').remove(); document.getElementById('bare')"
                  ".remove()")
    # sign in with the keyboard only
    page.locator("#login-user").focus()
    page.keyboard.type("producer")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS["producer"])
    page.keyboard.press("Enter")
    expect(page.locator("#timeline svg")).to_be_visible()
    for lang in ("en", "zh"):
        assert page.evaluate(UNLABELLED) == [], lang
        assert page.evaluate(LOW_CONTRAST) == [], lang
        page.locator("#lang").click()
    # the month view: one tick per day of the site's month, in its zone
    page.locator("#tl-month").click()
    expect(page.locator("#tl-month")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tl-range")).to_have_text("Mon 3 Mar to Wed 2 Apr")
    expect(page.locator("#timeline svg g.site-head").first.locator("text.day")).to_have_count(31)
    page.locator("#tl-next").click()
    expect(page.locator("#tl-range")).to_have_text("Thu 3 Apr to Fri 2 May")
    assert page.url.endswith("#date=2031-04-03&span=month")


# ------------------------------------------------------------------ sites in different zones

def test_each_site_in_its_own_zone(browser: Browser, tmp_path: Path) -> None:
    """A London stage beside a Shanghai one: each site's rows, ticks and times in its zone."""
    import json

    import httpx

    from stagectl.desk import auth
    from stagectl.desk.app import open_pool
    from stagectl.desk.config import DeskConfig
    from stagectl.desk.server import DeskServer

    seed = tmp_path / "stages.json"
    seed.write_text(json.dumps({"slot_minutes": 15, "stages": [
        {"id": "HP-1", "site": "Huangpu", "timezone": "Asia/Shanghai", "capabilities": ["arm"],
         "changeover_minutes": 60},
        {"id": "LN-1", "site": "London", "timezone": "Europe/London", "capabilities": ["arm"],
         "changeover_minutes": 30}]}), encoding="utf-8")
    config = DeskConfig(db=tmp_path / "booking.sqlite", seed=seed, port=0)
    pool = open_pool(config)
    try:
        with pool.store() as s:
            auth.add_user(s.conn, "producer", "producer", PASSWORDS["producer"])
            token = auth.create_token(s.conn, "producer", "tests")
    finally:
        pool.close()
    with DeskServer(config) as server:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
        ids = {}
        try:
            for stage, start in (("HP-1", "2031-03-04T09:00:00+08:00"),
                                 ("LN-1", "2031-03-04T09:00:00+00:00")):
                r = api.post("/api/v1/bookings", json={
                    "production": f"Shoot {stage}", "priority": 1, "duration_minutes": 240,
                    "earliest_start": start, "latest_end": start.replace("T09", "T20"),
                    "stage": stage, "start": start})
                assert r.status_code == 201, r.text
                ids[stage] = r.json()["id"]
                assert api.post(f"/api/v1/bookings/{ids[stage]}/hold", json={}).status_code == 200
        finally:
            api.close()
        tab = Tab(browser, server.url)
        try:
            page = tab.open()
            tab.login("producer")
            heads = page.locator("#timeline svg .site-name")
            expect(heads).to_have_text([
                "Huangpu · times in Asia/Shanghai (UTC+08:00)",
                "London · times in Europe/London (UTC+00:00)"])
            for stage, zone in (("HP-1", SHANGHAI), ("LN-1", "Europe/London (UTC+00:00)")):
                cells = page.locator(f"#tl-table tr[data-booking='{ids[stage]}'] td")
                expect(cells.nth(4)).to_have_text("Tue, 4 Mar 2031, 09:00")
                expect(cells.nth(6)).to_have_text(zone)
            # both at 09:00 local: on the one time axis London's is 8 hours later
            xs = {stage: float(bar(page, ids[stage]).locator("rect").get_attribute("x") or 0)
                  for stage in ids}
            px_per_day = page.evaluate("""() => {
              const t = [...document.querySelectorAll('#timeline svg g.site-head')][0]
                .querySelectorAll('line.tick');
              return t[1].x1.baseVal.value - t[0].x1.baseVal.value; }""")
            assert abs((xs["LN-1"] - xs["HP-1"]) - px_per_day / 3) < 1.5, (xs, px_per_day)
            # London's midnights sit 8 hours right of Shanghai's
            ticks = page.evaluate("""() => [...document.querySelectorAll(
              '#timeline svg g.site-head')].map(g => g.querySelector('line.tick').x1.baseVal
              .value)""")
            assert abs((ticks[1] - ticks[0]) - px_per_day / 3) < 1.5, ticks
            # a request wished for the London stage is typed and sent in London time
            page.locator("#req-wish-stage").select_option("LN-1")
            expect(page.locator("#req-zone")).to_have_text(
                "Times are read in Europe/London (UTC+00:00).")
            tab.request("Night shoot", hours=2, earliest="2031-03-05T18:00",
                        latest="2031-03-05T23:00", wish=("LN-1", "2031-03-05T19:00"))
            booking = tab.selected_id()
            r = httpx.get(f"{server.url}/api/v1/bookings/{booking}",
                          headers={"Authorization": f"Bearer {token}"})
            assert r.json()["start"] == "2031-03-05T19:00:00+00:00", r.json()
        finally:
            tab.close()
