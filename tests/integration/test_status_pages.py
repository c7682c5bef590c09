"""The status pages over HTTP: nothing without signing in with an API key, a signed session cookie that
never holds the key, CSRF-guarded actions, and user input escaped in every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from campaign.service.pages import session as sessions
from producer import Campaigns
from redis_model.api_keys import ApiKeyStore
from tests.integration.http_served import Served, serving

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NAME = '<script>alert("x")</script> & <b>sale</b>'


@pytest.fixture
def served(backend, make_settings) -> Iterator[Served]:
    _, key = ApiKeyStore(backend.client).create("operator")
    with serving(backend, make_settings("http://127.0.0.1:9")) as running:
        running.key = key
        yield running


@pytest.fixture
def campaign_id(backend, make_settings) -> str:
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
    rows = [{"to": f"+9198123456{i:02d}"} for i in range(5)]
    return campaigns.send_campaign(rows, sender="KLRHXA", type="MKT", body="Sale", name=NAME).campaign_id


def page(served: Served, path: str, cookie: str | None = None, method: str = "GET", form=None, **headers):
    sent = dict(headers)
    if cookie:
        sent["Cookie"] = f"{sessions.COOKIE}={cookie}"
    data = urlencode(form).encode() if form is not None else None
    return served.call(method, path, data=data, headers=sent | (FORM if form is not None else {}), key=None)


def sign_in(served: Served, key: str | None = None) -> str:
    answer = page(served, "/ui/sign-in", method="POST", form={"key": key or served.key, "next": "/ui/"})
    assert answer.status == 303, answer.body
    match = re.search(rf"{sessions.COOKIE}=([^;]+)", answer.headers["Set-Cookie"])
    assert match
    return match.group(1)


def csrf_of(html: bytes) -> str:
    match = re.search(rb'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1).decode()


def test_every_page_redirects_to_the_sign_in_form_without_a_session(served, campaign_id):
    for path in ("/ui/", f"/ui/campaigns/{campaign_id}"):
        answer = page(served, path)
        assert answer.status == 303
        assert answer.headers["Location"].startswith("/ui/sign-in?next=")
    assert page(served, "/").headers["Location"] == "/ui/"
    assert page(served, f"/ui/campaigns/{campaign_id}/status").status == 401


def test_an_unknown_key_is_refused_on_the_form_and_opens_no_session(served):
    answer = page(served, "/ui/sign-in", method="POST", form={"key": "ck_not-a-key"})

    assert answer.status == 401
    assert b"not known" in answer.body
    assert "Set-Cookie" not in answer.headers


def test_the_session_cookie_is_signed_http_only_strict_and_never_holds_the_key(served, campaign_id):
    answer = page(served, "/ui/sign-in", method="POST", form={"key": served.key, "next": "/ui/"})

    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert served.key not in cookie
    listing = page(served, "/ui/", sign_in(served))
    assert listing.status == 200 and campaign_id.encode() in listing.body
    assert served.key.encode() not in listing.body


def test_a_tampered_or_foreign_cookie_is_no_session(served):
    cookie = sign_in(served)
    payload, signature = cookie.split(".")
    forged = sessions.open_session(b"another secret" * 3, key_id="key_x", key_name="x", key_digest="0" * 64)[
        1
    ]

    assert page(served, "/ui/", f"{payload}x.{signature}").status == 303
    assert page(served, "/ui/", forged).status == 303
    assert page(served, "/ui/", cookie).status == 200


def test_revoking_the_key_ends_its_sessions(served, backend):
    cookie = sign_in(served)
    assert page(served, "/ui/", cookie).status == 200

    ApiKeyStore(backend.client).revoke("operator")

    assert page(served, "/ui/", cookie).status == 303


def test_campaign_names_are_escaped_in_the_list_and_the_detail(served, campaign_id):
    cookie = sign_in(served)

    for path in ("/ui/", f"/ui/campaigns/{campaign_id}"):
        html = page(served, path, cookie).body
        assert b"<script>alert" not in html and b"<b>sale</b>" not in html
        assert b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;sale&lt;/b&gt;" in html


def test_the_detail_json_is_the_campaign_status(served, campaign_id):
    answer = page(served, f"/ui/campaigns/{campaign_id}/status", sign_in(served))

    assert answer.status == 200
    assert answer.body["campaign_id"] == campaign_id and answer.body["total"] == 5
    assert answer.body["name"] == NAME


def test_pause_needs_the_session_csrf_token(served, backend, campaign_id, make_settings):
    cookie = sign_in(served)
    token = csrf_of(page(served, f"/ui/campaigns/{campaign_id}", cookie).body)
    pause = f"/ui/campaigns/{campaign_id}/pause"
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))

    assert page(served, pause, cookie, method="POST", form={}).status == 403
    assert page(served, pause, cookie, method="POST", form={"csrf": token + "x"}).status == 403
    assert page(served, pause, None, method="POST", form={"csrf": token}).status == 403
    assert campaigns.status(campaign_id).state == "queued"

    answer = page(served, pause, cookie, method="POST", form={"csrf": token})

    assert answer.status == 303 and answer.headers["Location"] == f"/ui/campaigns/{campaign_id}"
    assert campaigns.status(campaign_id).state == "paused"


def test_a_post_from_another_site_is_refused_even_with_the_token(served, backend, campaign_id, make_settings):
    cookie = sign_in(served)
    token = csrf_of(page(served, f"/ui/campaigns/{campaign_id}", cookie).body)

    answer = page(
        served, f"/ui/campaigns/{campaign_id}/cancel", cookie, method="POST", form={"csrf": token},
        Origin="https://evil.example",
    )  # fmt: skip

    assert answer.status == 403
    assert (
        Campaigns(backend.client, make_settings("http://127.0.0.1:9")).status(campaign_id).state == "queued"
    )


def test_an_action_from_a_state_it_is_not_made_from_is_a_conflict(
    served, backend, campaign_id, make_settings
):
    Campaigns(backend.client, make_settings("http://127.0.0.1:9")).cancel(campaign_id)
    cookie = sign_in(served)
    token = csrf_of(page(served, f"/ui/campaigns/{campaign_id}", cookie).body)
    resume = f"/ui/campaigns/{campaign_id}/resume"

    as_json = page(served, resume, cookie, method="POST", form={"csrf": token}, Accept="application/json")
    as_form = page(served, resume, cookie, method="POST", form={"csrf": token})

    assert as_json.status == 409 and as_json.body["error"]["code"] == "state_conflict"
    assert as_form.status == 303 and as_form.headers["Location"].endswith("?refused=resume")


def test_sign_in_goes_back_only_to_a_page_of_ours(served):
    for target, expected in (("/ui/campaigns/c1", "/ui/campaigns/c1"), ("//evil.example/ui/", "/ui/"),
                             ("https://evil.example/ui/", "/ui/"), ("/v1/campaigns", "/ui/"),
                             ("/ui/\r\nSet-Cookie: x=1", "/ui/")):  # fmt: skip
        answer = page(served, "/ui/sign-in", method="POST", form={"key": served.key, "next": target})
        assert answer.headers["Location"] == expected


def test_an_unknown_campaign_is_a_404_page(served):
    answer = page(served, "/ui/campaigns/c_nope", sign_in(served))

    assert answer.status == 404 and b"No such campaign" in answer.body


def test_the_bearer_api_is_not_opened_by_a_session_cookie(served, campaign_id):
    assert page(served, f"/v1/campaigns/{campaign_id}", sign_in(served)).status == 401


def test_sign_out_needs_the_token_and_ends_the_session_everywhere(served):
    cookie = sign_in(served)
    token = csrf_of(page(served, "/ui/", cookie).body)

    other = sign_in(served)  # the same key's session in another browser
    assert page(served, "/ui/sign-out", cookie, method="POST", form={"csrf": "forged"}).status == 303
    assert page(served, "/ui/", cookie).status == 200  # a sign-out without the token ends nothing

    answer = page(served, "/ui/sign-out", cookie, method="POST", form={"csrf": token})

    assert answer.status == 303 and f"{sessions.COOKIE}=;" in answer.headers["Set-Cookie"].replace('""', "")
    # The cookie, kept or copied, opens nothing now; the other session is still open.
    assert page(served, "/ui/", cookie).headers["Location"].startswith("/ui/sign-in")
    assert page(served, "/ui/", other).status == 200


def test_a_short_ui_secret_is_refused_naming_the_variable():
    with pytest.raises(sessions.SettingsError, match="CAMPAIGN_UI_SECRET has 5 characters"):
        sessions.secret_from_environ({"CAMPAIGN_UI_SECRET": "short"})
    assert sessions.secret_from_environ({}) is None


def test_a_cookie_or_token_that_is_not_ascii_is_no_session_not_an_error(served, campaign_id):
    cookie = sign_in(served)
    payload, _ = cookie.split(".")
    assert page(served, "/ui/", f"{payload}.\u00e9").status == 303
    form = {"csrf": "\u00e9"}
    assert page(served, f"/ui/campaigns/{campaign_id}/pause", cookie, "POST", form).status == 403


def test_behind_a_proxy_that_ended_tls_the_cookie_is_secure(served):
    direct = page(served, "/ui/sign-in", method="POST", form={"key": served.key, "next": "/ui/"})
    proxied = page(served, "/ui/sign-in", method="POST", form={"key": served.key, "next": "/ui/"},
                   **{"X-Forwarded-Proto": "https"})  # fmt: skip
    assert "Secure" not in direct.headers["Set-Cookie"]
    assert "Secure" in proxied.headers["Set-Cookie"]
