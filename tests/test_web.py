"""HTTP tests of every endpoint of the daemon's web server, over a real SQLite store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.adapters.fetch import HttpFetcher
from monitor.ports import ClosingFetcher
from tests.servers import FixtureServer, Page
from tests.webapp import HOSTILE_TITLE, NOW, TOKEN, RunningWeb, start_web


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RunningWeb]:
    running = start_web(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningWeb]:
    running = start_web(tmp_path, token=TOKEN)
    yield running
    running.stop()


def get(web: RunningWeb, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(web.url(path), **kwargs)  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# /healthz and /readyz


def test_healthz_answers_while_the_loop_runs(web: RunningWeb) -> None:
    response = get(web, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_store_and_scheduler_answer(web: RunningWeb) -> None:
    response = get(web, "/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_503_names_a_stopped_scheduler(web: RunningWeb) -> None:
    web.running[0] = False
    response = get(web, "/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert "scheduler not running" in response.json()["reason"]


def test_readyz_503_names_overdue_polls(tmp_path: Path) -> None:
    web = start_web(tmp_path, clock=lambda: NOW + timedelta(hours=1))
    try:
        response = get(web, "/readyz")
        assert response.status_code == 503
        reason = response.json()["reason"]
        assert "overdue" in reason
        assert "broken-feed" in reason  # due at NOW + 30 min, now NOW + 1 h
    finally:
        web.stop()


def test_readyz_503_when_the_store_does_not_answer(web: RunningWeb) -> None:
    web.store.close()
    response = get(web, "/readyz")
    assert response.status_code == 503
    assert "store not answering" in response.json()["reason"]


# /metrics


def test_metrics_parse_with_the_prometheus_parser_and_carry_the_contract_names(
    web: RunningWeb,
) -> None:
    response = get(web, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "news_monitor_fetches", "news_monitor_fetch_duration_seconds", "news_monitor_articles",
        "news_monitor_matches", "news_monitor_deliveries", "news_monitor_outbox_pending",
        "news_monitor_outbox_dead", "news_monitor_sources",
        "news_monitor_config_last_reload_successful", "news_monitor_build_info",
    ):  # fmt: skip
        assert name in families, name
    assert families["news_monitor_fetch_duration_seconds"].type == "histogram"
    assert families["news_monitor_fetches"].type == "counter"
    samples = metric_samples(response.text)
    assert samples[("news_monitor_sources", (("state", "failing"),))] == 1
    assert samples[("news_monitor_sources", (("state", "ok"),))] == 2
    assert samples[("news_monitor_outbox_pending", ())] == 1
    assert samples[("news_monitor_outbox_dead", ())] == 1
    assert samples[("news_monitor_build_info", (("version", "0.1.0"),))] == 1
    assert not any(name.endswith("_created") for name, _ in samples)


def test_metric_labels_take_no_unbounded_values(web: RunningWeb) -> None:
    labels = {
        (key, value)
        for family in text_string_to_metric_families(get(web, "/metrics").text)
        for sample in family.samples
        for key, value in sample.labels.items()
    }
    assert {key for key, _ in labels} <= {"result", "target", "state", "version", "le"}
    for key, value in labels:
        assert "://" not in value and "/" not in value, (key, value)
    assert {v for k, v in labels if k == "target"} == {"hook"}


def test_reload_outcome_is_exposed(web: RunningWeb) -> None:
    web.call(lambda: web.metrics.record_reload(True, NOW))
    samples = metric_samples(get(web, "/metrics").text)
    assert samples[("news_monitor_config_last_reload_successful", ())] == 1
    assert samples[("news_monitor_config_last_reload_success_timestamp_seconds", ())] == (
        NOW.timestamp()
    )
    web.call(lambda: web.metrics.record_reload(False, NOW + timedelta(minutes=1)))
    samples = metric_samples(get(web, "/metrics").text)
    assert samples[("news_monitor_config_last_reload_successful", ())] == 0
    assert samples[("news_monitor_config_last_reload_success_timestamp_seconds", ())] == (
        NOW.timestamp()
    )


# The dashboard


def test_dashboard_lists_failing_sources_first_with_result_next_check_and_streak(
    web: RunningWeb,
) -> None:
    response = get(web, "/")
    assert response.status_code == 200
    html = response.text
    names = re.findall(r'data-name="([^"]+)"', html)
    assert names[0] == "broken-feed"
    assert set(names) == {"broken-feed", "asia-dispatch", "quiet-wire"}
    row = html[
        html.index('data-name="broken-feed"') : html.index(
            "</tr>", html.index('data-name="broken-feed"')
        )
    ]
    assert (
        'class="failing"'
        in html[html.rindex("<tr", 0, html.index('data-name="broken-feed"')) :][:40]
    )
    assert "HTTP 500" in row
    assert "in 30 min" in row  # next check
    assert '<td class="n">4</td>' in row  # error streak


def test_dashboard_shows_matches_with_rule_terms_and_marked_snippet(web: RunningWeb) -> None:
    html = get(web, "/").text
    section = html[html.index('id="matches"') : html.index('id="stories"')]
    assert "japan-korea" in section
    assert '<span class="term">north korea</span>' in section
    assert "<mark>Japan</mark>" in section
    assert "Japan (title), north korea (title)" in section


def test_dashboard_shows_each_story_with_every_source(web: RunningWeb) -> None:
    html = get(web, "/").text
    section = html[html.index('id="stories"') : html.index('id="outbox"')]
    row = section[section.index("Japan and North Korea hold summit (1)") :]
    row = row[: row.index("</tr>")]
    assert "asia-dispatch" in row and "quiet-wire" in row
    assert "(2 sources)" in row


def test_dashboard_outbox_shows_pending_and_dead_with_masked_targets(web: RunningWeb) -> None:
    html = get(web, "/").text
    section = html[html.index('id="outbox"') :]
    assert "Pending (1)" in section and "Dead (1)" in section
    assert "HTTP 503 from the webhook" in section
    assert 'action="/outbox/d-dead/retry"' in section
    assert "Retry now" in section
    assert "secret-path-XYZ" not in html and "hunter2" not in html
    assert "json://" in section  # the service, masked


def test_dashboard_escapes_hostile_feed_text(web: RunningWeb) -> None:
    html = get(web, "/").text
    assert HOSTILE_TITLE not in html
    assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert 'onerror="window' not in html


def test_instances_section_only_with_a_cluster(tmp_path: Path) -> None:
    web = start_web(tmp_path)
    try:
        assert 'id="instances"' not in get(web, "/").text
        web.server.context.instances = lambda: [{"id": "host-a:1234", "polls": 7}]
        html = get(web, "/").text
        assert 'id="instances"' in html and "host-a:1234" in html
    finally:
        web.stop()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=broken", ["broken-feed"]),
        ("show=failing", ["broken-feed"]),
        ("show=ok", ["asia-dispatch", "quiet-wire"]),
        ("q=QUIET&show=all", ["quiet-wire"]),
        ("q=nothing-like-this", []),
    ],
)
def test_source_filter_works_without_javascript(
    web: RunningWeb, query: str, expected: list[str]
) -> None:
    html = get(web, f"/?{query}").text
    assert re.findall(r'data-name="([^"]+)"', html) == expected


def test_sources_are_paged(tmp_path: Path) -> None:
    web = start_web(tmp_path, sources=250, fill_store=False)
    try:
        first = re.findall(r'data-name="([^"]+)"', get(web, "/").text)
        third = re.findall(r'data-name="([^"]+)"', get(web, "/?page=3").text)
        assert len(first) == 100 and len(third) == 50
        assert not set(first) & set(third)
        assert "page 1 of 3" in get(web, "/").text
    finally:
        web.stop()


# Retry now


def test_retry_now_queues_a_dead_delivery_again_and_wakes_the_outbox(web: RunningWeb) -> None:
    with httpx.Client(base_url=web.base) as client:
        token = csrf_of(client.get("/").text)
        response = client.post("/outbox/d-dead/retry", data={"csrf": token})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/?retried=1")
    assert "d-dead" in {d.id for d in web.store.pending_deliveries(NOW, due_only=False)}
    assert web.store.dead_deliveries() == []
    assert web.woken == [True]


def test_retry_needs_the_csrf_token(web: RunningWeb) -> None:
    for data in ({}, {"csrf": "0" * 64}):
        response = httpx.post(web.url("/outbox/d-dead/retry"), data=data)
        assert response.status_code == 403
    assert [d.id for d in web.store.dead_deliveries()] == ["d-dead"]
    assert web.woken == []


def test_retry_of_an_unknown_delivery_is_404(web: RunningWeb) -> None:
    with httpx.Client(base_url=web.base) as client:
        token = csrf_of(client.get("/").text)
        assert client.post("/outbox/d-pending/retry", data={"csrf": token}).status_code == 404


# The rule tester


def run_tester(web: RunningWeb, **fields: str) -> httpx.Response:
    with httpx.Client(base_url=web.base) as client:
        token = csrf_of(client.get("/rules/test").text)
        return client.post("/rules/test", data={"csrf": token, **fields})


def test_rule_tester_shows_the_parsed_form_and_the_match_explained(web: RunningWeb) -> None:
    text = "Japan and North Korea meet\n\nThe summit covered the abduction issue."
    response = run_tester(web, query="Japan AND North Korea AND summit|abduction", text=text)
    assert response.status_code == 200
    html = response.text
    assert "Japan AND &#34;north korea&#34; AND (summit OR abduction)" in html
    assert "Matches 1 of 1" in html
    assert "<mark>summit</mark>" in html
    assert '<span class="term">north korea</span>' in html


def test_rule_tester_says_when_nothing_matches(web: RunningWeb) -> None:
    html = run_tester(web, query="Japanese", text="Japan today\n\nNothing else.").text
    assert "No match in 1 article" in html


def test_rule_tester_shows_a_syntax_error_with_its_caret(web: RunningWeb) -> None:
    response = run_tester(web, query="Japan AND (summit", text="x")
    assert response.status_code == 400
    pointer = re.search(r'<pre class="pointer" id="pointer">(.*?)</pre>', response.text, re.S)
    assert pointer is not None
    line, caret = pointer.group(1).split("\n")
    assert line == "Japan AND (summit"
    assert caret.index("^") == line.index("(")
    assert "unclosed" in response.text


def test_rule_tester_escapes_pasted_text(web: RunningWeb) -> None:
    html = run_tester(web, query="pwned", text=f"{HOSTILE_TITLE}\n\npwned").text
    assert "<script>window.__pwned" not in html
    assert "&lt;script&gt;" in html


def test_rule_tester_url_fetch_refuses_non_public_addresses(web: RunningWeb) -> None:
    server = FixtureServer({"/feed.xml": Page(b"<rss/>")}).start()
    try:
        html = run_tester(web, query="Japan", url=server.url("/feed.xml")).text
        assert "non-public address" in html
        assert server.gets("/feed.xml") == []
    finally:
        server.stop()


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Japan and North Korea hold summit</title><link>http://127.0.0.1/a</link>
<description>Talks on the abduction issue.</description><guid>a</guid></item>
<item><title>Weather</title><link>http://127.0.0.1/b</link><guid>b</guid></item>
</channel></rss>"""


def test_rule_tester_reads_a_feed_by_url(tmp_path: Path) -> None:
    def unguarded() -> ClosingFetcher:
        return HttpFetcher("test")

    server = FixtureServer({"/feed.xml": Page(RSS)}).start()
    web = start_web(tmp_path, tester_fetcher=unguarded)
    try:
        html = run_tester(web, query="Japan AND summit|abduction", url=server.url("/feed.xml")).text
        assert "Matches 1 of 2" in html
        assert "Japan and North Korea hold summit" in html
    finally:
        web.stop()
        server.stop()


# Security


def test_every_response_carries_a_csp_without_inline_script(web: RunningWeb) -> None:
    for path in ("/", "/rules/test", "/healthz", "/readyz", "/metrics", "/nowhere"):
        csp = get(web, path).headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
    for path in ("/", "/rules/test"):
        html = get(web, path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert " on" + "click=" not in html


def test_without_a_token_only_loopback_host_names_are_answered(web: RunningWeb) -> None:
    response = get(web, "/", headers={"Host": "rebound.evil.example"})
    assert response.status_code == 421
    assert get(web, "/", headers={"Host": "localhost:8421"}).status_code == 200


def test_with_a_token_pages_need_it(guarded: RunningWeb) -> None:
    assert get(guarded, "/healthz").status_code == 200
    for path in ("/", "/readyz", "/metrics", "/rules/test"):
        response = get(guarded, path, headers={"Accept": "application/json"})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert get(guarded, path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = get(guarded, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, path
    for path in ("/static/style.css", "/static/dashboard.js"):  # the login page needs them
        assert get(guarded, path).status_code == 200
    browser = get(guarded, "/?show=failing", headers={"Accept": "text/html"})
    assert browser.status_code == 303
    location = urlsplit(browser.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/?show=failing"]


def test_login_form_sets_an_httponly_samesite_cookie(guarded: RunningWeb) -> None:
    with httpx.Client(base_url=guarded.base) as client:
        assert "Log in" in client.get("/login").text
        wrong = client.post("/login", data={"token": "nope", "next": "/"})
        assert wrong.status_code == 401
        assert "wrong token" in wrong.text
        assert "set-cookie" not in wrong.headers
        right = client.post("/login", data={"token": TOKEN, "next": "/rules/test"})
        assert right.status_code == 303
        assert right.headers["location"] == "/rules/test"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert TOKEN not in cookie
        assert client.get("/").status_code == 200
        assert (
            client.post("/login", data={"token": TOKEN, "next": "//evil.example/"}).headers[
                "location"
            ]
            == "/"
        )


def test_token_in_the_query_logs_in_once_and_leaves_the_url(guarded: RunningWeb) -> None:
    with httpx.Client(base_url=guarded.base) as client:
        response = client.get(f"/?show=failing&token={TOKEN}")
        assert response.status_code == 303
        assert response.headers["location"] == "/?show=failing"
        assert client.get("/?show=failing").status_code == 200


def test_with_a_token_posts_need_both_the_session_and_the_csrf_token(
    guarded: RunningWeb,
) -> None:
    with httpx.Client(base_url=guarded.base) as client:
        client.post("/login", data={"token": TOKEN, "next": "/"})
        token = csrf_of(client.get("/").text)
        assert client.post("/outbox/d-dead/retry", data={"csrf": "f" * 64}).status_code == 403
        anonymous = httpx.post(guarded.url("/outbox/d-dead/retry"), data={"csrf": token})
        assert anonymous.status_code == 401
        assert guarded.woken == []
        assert client.post("/outbox/d-dead/retry", data={"csrf": token}).status_code == 303
        assert guarded.woken == [True]


def test_links_from_feeds_are_http_only(tmp_path: Path) -> None:
    web = start_web(tmp_path)
    try:
        web.store.db.execute("UPDATE articles SET url = 'javascript:alert(1)' WHERE id = 'a1'")
        html = get(web, "/").text
        assert "javascript:" not in html
    finally:
        web.stop()
