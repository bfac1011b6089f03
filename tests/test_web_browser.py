"""The dashboard in headless Chromium (Debian's package, driven by Playwright): against a
running daemon and against a store of fixture data; the filter, the rule tester, "retry
now", the login form, and hostile feed text that must never run.

Screenshots of each page go to $TEST_ARTIFACTS (default: test-artifacts/ in the checkout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import FixtureServer, WebhookReceiver
from tests.webapp import TOKEN, RunningWeb, start_web
from tests.webdaemon import metric, start, wait_until, write_config

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts")
FAILING_BACKGROUND = "rgb(253, 236, 234)"  # --bad-bg in style.css

sync_api = pytest.importorskip("playwright.sync_api")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.errors = []  # uncaught exceptions and console errors other than the favicon
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("dialog", lambda dialog: page.errors.append(f"dialog: {dialog.message}"))
    yield page
    context.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RunningWeb]:
    running = start_web(tmp_path)
    yield running
    running.stop()


def shot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def pwned(page: object) -> object:
    return page.evaluate("window.__pwned")  # type: ignore[attr-defined]


def test_dashboard_of_a_running_daemon(
    tmp_path: Path, page: object, feed_server: FixtureServer, webhook: WebhookReceiver
) -> None:
    daemon = start(write_config(tmp_path, feed_server, webhook))
    try:
        assert wait_until(lambda: metric(daemon, "news_monitor_articles_total") >= 3)
        assert wait_until(lambda: metric(daemon, "news_monitor_sources", state="failing") == 1)
        page.goto(daemon.url("/"))  # type: ignore[attr-defined]
        rows = page.locator("table.sources tbody tr")  # type: ignore[attr-defined]
        assert rows.first.get_attribute("data-name") == "broken-wire"
        background = rows.first.evaluate("row => getComputedStyle(row).backgroundColor")
        assert background == FAILING_BACKGROUND
        matches = page.locator("#matches article.match")  # type: ignore[attr-defined]
        assert matches.count() == 2
        titles = matches.locator("h3").all_inner_texts()
        assert any("<script>window.__pwned = 1</script>" in title for title in titles)
        assert page.locator("#matches mark").count() > 0  # type: ignore[attr-defined]
        assert page.locator("#matches img").count() == 0  # type: ignore[attr-defined]
        assert pwned(page) is None
        shot(page, "dashboard-daemon")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        assert daemon.stop() == 0


def test_the_source_filter_live_and_on_the_server(web: RunningWeb, page: object) -> None:
    page.goto(web.url("/"))  # type: ignore[attr-defined]
    shot(page, "dashboard")
    rows = page.locator("table.sources tbody tr")  # type: ignore[attr-defined]
    assert rows.count() == 3
    page.fill("#filter-text", "quiet")  # type: ignore[attr-defined]
    visible = page.locator("table.sources tbody tr:visible")  # type: ignore[attr-defined]
    assert visible.count() == 1
    assert visible.first.get_attribute("data-name") == "quiet-wire"
    page.fill("#filter-text", "")  # type: ignore[attr-defined]
    page.select_option("#filter-show", "failing")  # type: ignore[attr-defined]
    assert visible.count() == 1
    page.click("#source-filter button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**show=failing**")  # type: ignore[attr-defined]
    assert rows.count() == 1
    assert rows.first.get_attribute("data-name") == "broken-feed"
    shot(page, "dashboard-failing")
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_filter_works_without_javascript(browser: object, web: RunningWeb) -> None:
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(web.url("/"))
        page.fill("#filter-text", "broken")
        page.press("#filter-text", "Enter")
        page.wait_for_url("**q=broken**")
        names = page.locator("table.sources tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.name)"
        )
        assert names == ["broken-feed"]
    finally:
        context.close()


def test_the_rule_tester_explains_a_match_and_points_at_an_error(
    web: RunningWeb, page: object
) -> None:
    page.goto(web.url("/rules/test"))  # type: ignore[attr-defined]
    page.fill("#query", "Japan AND North Korea AND summit|abduction")  # type: ignore[attr-defined]
    page.fill(  # type: ignore[attr-defined]
        "#text", "Japan and North Korea meet\n\nA summit on the abduction issue opened today."
    )
    page.click("form.tester button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#verdict")  # type: ignore[attr-defined]
    assert page.inner_text("#canonical") == (  # type: ignore[attr-defined]
        'Japan AND "north korea" AND (summit OR abduction)'
    )
    assert page.inner_text("#verdict") == "Matches 1 of 1"  # type: ignore[attr-defined]
    marked = page.locator("#result mark").all_inner_texts()  # type: ignore[attr-defined]
    assert {"summit", "abduction"} <= set(marked)
    shot(page, "rules-test-match")
    page.fill("#query", "Japan AND (summit OR")  # type: ignore[attr-defined]
    page.click("form.tester button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#pointer")  # type: ignore[attr-defined]
    line, caret = page.inner_text("#pointer").split("\n")  # type: ignore[attr-defined]
    assert line == "Japan AND (summit OR"
    assert caret.strip() == "^"
    shot(page, "rules-test-error")
    assert page.errors == []  # type: ignore[attr-defined]


def test_hostile_text_never_runs(web: RunningWeb, page: object) -> None:
    page.goto(web.url("/"))  # type: ignore[attr-defined]
    assert pwned(page) is None
    assert page.locator("main img").count() == 0  # type: ignore[attr-defined]
    assert "<script>window.__pwned = 1</script>" in page.inner_text("#matches")  # type: ignore[attr-defined]
    page.goto(web.url("/rules/test"))  # type: ignore[attr-defined]
    hostile = '<img src=x onerror="window.__pwned=3"><script>window.__pwned=4</script>'
    page.fill("#query", "pwned")  # type: ignore[attr-defined]
    page.fill("#text", f"{hostile}\n\npwned {hostile}")  # type: ignore[attr-defined]
    page.click("form.tester button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#verdict")  # type: ignore[attr-defined]
    assert pwned(page) is None
    assert page.locator("#result img").count() == 0  # type: ignore[attr-defined]
    assert page.errors == []  # type: ignore[attr-defined]


def test_retry_now_from_the_browser(web: RunningWeb, page: object) -> None:
    page.goto(web.url("/#outbox"))  # type: ignore[attr-defined]
    page.click("text=Retry now")  # type: ignore[attr-defined]
    page.wait_for_selector(".notice")  # type: ignore[attr-defined]
    assert "Dead (0)" in page.inner_text("#outbox")  # type: ignore[attr-defined]
    assert "Pending (2)" in page.inner_text("#outbox")  # type: ignore[attr-defined]
    assert web.woken == [True]
    shot(page, "dashboard-retried")


def test_login_form_and_its_cookie(tmp_path: Path, page: object) -> None:
    web = start_web(tmp_path, token=TOKEN)
    try:
        page.goto(web.url("/rules/test"))  # type: ignore[attr-defined]
        page.wait_for_url("**/login?next=**")  # type: ignore[attr-defined]
        header = page.locator("header.top").evaluate(  # type: ignore[attr-defined]
            "h => getComputedStyle(h).backgroundColor"
        )
        assert header == "rgb(20, 26, 41)"  # styled: the stylesheet needs no login
        shot(page, "login")
        assert page.locator("text=Log out").count() == 0  # type: ignore[attr-defined]
        page.fill("input[name=token]", "wrong-token-wrong-token")  # type: ignore[attr-defined]
        page.click("main button[type=submit]")  # type: ignore[attr-defined]
        assert "wrong token" in page.inner_text("main")  # type: ignore[attr-defined]
        page.fill("input[name=token]", TOKEN)  # type: ignore[attr-defined]
        page.click("main button[type=submit]")  # type: ignore[attr-defined]
        page.wait_for_url("**/rules/test")  # type: ignore[attr-defined]
        cookies = page.context.cookies()  # type: ignore[attr-defined]
        session = next(c for c in cookies if c["name"] == "monitor_session")
        assert session["httpOnly"] is True and session["sameSite"] == "Strict"
        assert "monitor_session" not in page.evaluate("document.cookie")  # type: ignore[attr-defined]
        page.goto(web.url("/"))  # type: ignore[attr-defined]
        assert page.locator("table.sources tbody tr").count() == 3  # type: ignore[attr-defined]
        page.click("text=Log out")  # type: ignore[attr-defined]
        page.wait_for_url("**/login")  # type: ignore[attr-defined]
        page.goto(web.url("/"))  # type: ignore[attr-defined]
        page.wait_for_url("**/login?next=**")  # type: ignore[attr-defined]
    finally:
        web.stop()
