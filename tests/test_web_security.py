"""The web's guard against hostile input: redirects after login, odd cookies and CSRF
values, session revocation, masked credentials (a real server on 127.0.0.1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from monitor.state import SourceState
from monitor.web.app import GUARD
from monitor.web.security import COOKIE, COOKIE_MAX_AGE, safe_next
from tests.webapp import TOKEN, RunningWeb, start_web


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningWeb]:
    running = start_web(tmp_path, token=TOKEN)
    yield running
    running.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def logged_in(web: RunningWeb, **headers: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=web.base)
    response = client.post("/login", data={"token": TOKEN, "next": "/"}, headers=headers)
    assert response.status_code == 303
    return client, response.headers["set-cookie"]


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "https://evil.example/",
        "https:/evil.example/",
        "javascript:alert(1)",
        " //evil.example/",
        "/\x00/evil.example/",
        "http://[::1/",
        "evil.example",
        "",
        None,
    ],
)
def test_safe_next_refuses_anything_a_browser_could_take_off_site(target: str | None) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/rules/test", "/?show=failing&q=a%20b", "/a/b#x"])
def test_safe_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


def test_login_with_a_tab_in_next_stays_on_the_site(guarded: RunningWeb) -> None:
    """Browsers drop tabs and newlines from a Location: "/\\t/evil" went to //evil."""
    with httpx.Client(base_url=guarded.base) as client:
        response = client.post("/login", data={"token": TOKEN, "next": "/\t/evil.example/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_token_in_the_query_of_a_double_slash_path_does_not_leave_the_site(
    guarded: RunningWeb,
) -> None:
    response = httpx.get(guarded.url(f"//evil.example/?token={TOKEN}"))
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_non_ascii_cookie_is_a_refusal_not_a_500(guarded: RunningWeb) -> None:
    cookie = f"{COOKIE}=sess\u00e9\u6f22".encode()
    response = httpx.get(
        guarded.url("/"), headers={b"Cookie": cookie, b"Accept": b"application/json"}
    )
    assert response.status_code == 401
    assert "content-security-policy" in response.headers


def test_a_non_ascii_csrf_value_is_a_403_not_a_500(guarded: RunningWeb) -> None:
    client, _ = logged_in(guarded)
    with closing(client):
        response = client.post("/outbox/d-dead/retry", data={"csrf": "\u00e9" * 64})
    assert response.status_code == 403
    assert guarded.woken == []


def test_a_handler_error_is_a_500_with_the_security_headers(
    guarded: RunningWeb, caplog: pytest.LogCaptureFixture
) -> None:
    guarded.store.close()  # the dashboard's queries now raise
    response = httpx.get(guarded.url("/"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 500
    assert "content-security-policy" in response.headers
    assert response.headers["x-frame-options"] == "DENY"
    assert "Traceback" not in response.text
    errors = [r for r in caplog.records if r.name == "monitor.web.security"]
    assert len(errors) == 1 and errors[0].exc_info is None


def test_each_login_gets_its_own_session_and_logging_out_revokes_it(
    guarded: RunningWeb,
) -> None:
    first, first_cookie = logged_in(guarded)
    second, second_cookie = logged_in(guarded)
    session = first.cookies[COOKIE]
    assert session != second.cookies[COOKIE]
    assert TOKEN not in first_cookie + second_cookie
    with closing(first), closing(second):
        csrf = csrf_of(first.get("/").text)
        assert first.post("/logout", data={"csrf": csrf}).status_code == 303
        # The stolen (or kept) cookie of the logged-out session no longer works.
        replay = httpx.get(
            guarded.url("/"),
            cookies={COOKIE: session},
            headers={"Accept": "application/json"},
        )
        assert replay.status_code == 401
        assert second.get("/").status_code == 200


def test_sessions_expire(guarded: RunningWeb) -> None:
    guard = guarded.server.app[GUARD]
    now = [1000.0]
    guard.clock = lambda: now[0]
    client, _ = logged_in(guarded)
    with closing(client):
        assert client.get("/").status_code == 200
        now[0] += COOKIE_MAX_AGE + 1
        assert client.get("/", headers={"Accept": "application/json"}).status_code == 401


def test_a_new_auth_token_ends_the_old_sessions(guarded: RunningWeb) -> None:
    client, _ = logged_in(guarded)
    new_token = "a-brand-new-token-987654321"
    with closing(client):
        guarded.call(lambda: guarded.server.set_token(new_token))
        assert client.get("/", headers={"Accept": "application/json"}).status_code == 401
        old = httpx.get(guarded.url("/"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert old.status_code == 401
        new = httpx.get(guarded.url("/"), headers={"Authorization": f"Bearer {new_token}"})
        assert new.status_code == 200


def test_the_cookie_is_secure_behind_a_tls_proxy(guarded: RunningWeb) -> None:
    plain, plain_cookie = logged_in(guarded)
    proxied, proxied_cookie = logged_in(guarded, **{"X-Forwarded-Proto": "https"})
    plain.close()
    proxied.close()
    assert "Secure" not in plain_cookie
    assert "Secure" in proxied_cookie


def test_source_urls_on_the_dashboard_hide_their_credentials(guarded: RunningWeb) -> None:
    guarded.store.save_state(
        SourceState(
            "quiet-wire",
            "https://quiet-wire.example/feed.xml",
            fetch_url="https://reader:pa55w0rd-XYZ@quiet-wire.example/private.xml",
        )
    )
    html = httpx.get(guarded.url("/"), headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "pa55w0rd-XYZ" not in html and "reader:" not in html
    assert "***@quiet-wire.example/private.xml" in html
