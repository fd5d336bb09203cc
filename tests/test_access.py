"""Access control (monitor/dashboard/auth.py): who may open the dashboard.

Unit tests of the pure parts (configuration, the e-mail-domain allow-list, the password
comparison, the throttle), AppTest runs of the misconfiguration pages, and the real dashboard
in Chromium: once with a shared password, once with OIDC sign-in (st.login) against a small
OpenID provider run here on 127.0.0.1, which signs RS256 id_tokens and checks PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import importlib.util
import json
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from monitor.config import ConfigError, load_settings
from monitor.dashboard import auth
from monitor.dashboard.auth import (
    AccessConfigError,
    AccessPolicy,
    Throttle,
    access_policy,
    domain_allowed,
    password_matches,
    refusal,
)
from tests.conftest import CHROMIUM, ROOT, _free_port, require
from tests.streamlit_server import streamlit_server
from tests.test_dashboard_browser import CHROMIUM_ARGS, FIRST_RENDER_MS

PASSWORD = "correct horse battery staple 42"
COOKIE_SECRET = "c" * 64


def valid_auth(**overrides: Any) -> dict[str, Any]:
    """Return a complete flat [auth] table, with any key replaced."""
    table: dict[str, Any] = {
        "redirect_uri": "https://monitor.example.com/oauth2callback",
        "cookie_secret": COOKIE_SECRET,
        "client_id": "repmon",
        "client_secret": "s3cret-from-the-provider",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    }
    table.update(overrides)
    return table


# -- configuration ----------------------------------------------------------------------------


def test_nothing_configured_leaves_the_dashboard_open() -> None:
    assert access_policy({}, environ={}) == AccessPolicy(mode="open")
    assert access_policy({"reddit": {"client_id": "x"}}, environ={}).mode == "open"


def test_password_from_secrets_or_environment() -> None:
    policy = access_policy({"access": {"password": PASSWORD}}, environ={})
    assert policy.mode == "password" and policy.password == PASSWORD
    assert PASSWORD not in repr(policy)
    from_env = access_policy({}, environ={auth.PASSWORD_ENV: "another long password"})
    assert from_env.mode == "password" and from_env.password == "another long password"
    # The environment wins over the file, like every other setting.
    both = access_policy(
        {"access": {"password": PASSWORD}}, environ={auth.PASSWORD_ENV: "from the environment"}
    )
    assert both.password == "from the environment"


def test_oidc_with_allow_list() -> None:
    policy = access_policy(
        {"auth": valid_auth(), "access": {"allowed_domains": [" Example.COM ", "b.example.org"]}},
        environ={},
    )
    assert policy == AccessPolicy(
        mode="oidc", provider=None, allowed_domains=("example.com", "b.example.org")
    )


def test_named_provider_is_found_or_chosen() -> None:
    google = {k: v for k, v in valid_auth().items() if k in auth.PROVIDER_KEYS}
    shared = {"redirect_uri": valid_auth()["redirect_uri"], "cookie_secret": COOKIE_SECRET}
    only_one = access_policy({"auth": {**shared, "google": google}}, environ={})
    assert only_one.provider == "google"
    two = {**shared, "google": google, "okta": dict(google)}
    assert access_policy({"auth": two, "access": {"provider": "okta"}}, environ={}).provider == (
        "okta"
    )
    with pytest.raises(AccessConfigError, match=r"several providers \(google, okta\)"):
        access_policy({"auth": two}, environ={})
    with pytest.raises(AccessConfigError, match=r"provider = 'azure' names no provider"):
        access_policy({"auth": two, "access": {"provider": "azure"}}, environ={})


@pytest.mark.parametrize(
    ("secrets_table", "environ", "expected"),
    [
        (
            {"access": {"allowed_domains": ["example.com"]}},
            {},
            r"\[access\] allowed_domains is set but there is no \[auth\] table",
        ),
        ({"access": {"provider": "google"}}, {}, r"\[access\] provider is set but there is no"),
        ({"access": {"pasword": PASSWORD}}, {}, r"unknown key \[access\] 'pasword'"),
        ({"access": "secret"}, {}, r"\[access\] must be a table"),
        ({"access": {"password": "tiny-secret"}}, {}, r"shorter than 12 characters"),
        ({"access": {"password": 123456789012345}}, {}, r"must be a string"),
        ({"access": {"password": "CHANGE-ME-to-something"}}, {}, r"placeholder"),
        (
            {"auth": valid_auth(), "access": {"password": PASSWORD}},
            {},
            r"both \[auth\] \(OIDC sign-in\) and \[access\] password are set",
        ),
        (
            {"auth": valid_auth()},
            {auth.PASSWORD_ENV: PASSWORD},
            r"both \[auth\] \(OIDC sign-in\) and \$MONITOR_DASHBOARD_PASSWORD",
        ),
        ({"auth": valid_auth(cookie_secret="short")}, {}, r"cookie_secret is missing or shorter"),
        ({"auth": valid_auth(cookie_secret="CHANGE-ME" * 8)}, {}, r"cookie_secret is still"),
        ({"auth": valid_auth(redirect_uri="/oauth2callback")}, {}, r"absolute http\(s\)"),
        ({"auth": valid_auth(redirect_uri="https://m.example.com/")}, {}, r"end with /oauth2"),
        ({"auth": valid_auth(client_secret="")}, {}, r"\[auth\] client_secret is missing"),
        ({"auth": valid_auth(server_metadata_url="id.example.com")}, {}, r"discovery document"),
        (
            {"auth": {"redirect_uri": valid_auth()["redirect_uri"], "cookie_secret": "x" * 40}},
            {},
            r"\[auth\] names no identity provider",
        ),
        (
            {"auth": valid_auth(), "access": {"allowed_domains": []}},
            {},
            r"allowed_domains is empty, which would let nobody in",
        ),
        (
            {"auth": valid_auth(), "access": {"allowed_domains": "example.com"}},
            {},
            r"must be a list of domains",
        ),
        (
            {"auth": valid_auth(), "access": {"allowed_domains": ["@example.com"]}},
            {},
            r"'@example.com' is not a domain. Write the domain alone, e.g. \"example.com\"",
        ),
        (
            {"auth": valid_auth(), "access": {"allowed_domains": ["*.example.com"]}},
            {},
            r"every subdomain you allow must be listed on its own",
        ),
        (
            {"auth": valid_auth(), "access": {"allowed_domains": ["example com"]}},
            {},
            r"'example com' is not a domain name",
        ),
    ],
)
def test_misconfiguration_names_the_key_and_the_fix(
    secrets_table: dict[str, Any], environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(AccessConfigError, match=expected) as caught:
        access_policy(secrets_table, environ=environ)
    message = str(caught.value)
    # Messages are shown on the page: never a secret's value in them.
    for secret in ("tiny-secret", PASSWORD, COOKIE_SECRET, "s3cret-from-the-provider"):
        assert secret not in message


@pytest.mark.parametrize("table", ["access", "auth"])
def test_sign_in_settings_in_monitor_toml_are_refused(table: str, tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[brand]\nname = "Acme"\n\n[{table}]\npassword = "{PASSWORD}"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=rf"\[{table}\] belongs in .streamlit/secrets.toml"):
        load_settings(config)


def uncomment(text: str, *keys: str) -> str:
    """Return the TOML text with the commented-out lines for `keys` (and [auth]) switched on."""
    lines = []
    for line in text.splitlines():
        stripped = line.removeprefix("# ")
        if stripped == "[auth]" or stripped.split(" = ")[0] in keys:
            line = stripped
        lines.append(line)
    return "\n".join(lines)


def test_example_secrets_are_safe_as_shipped_and_when_uncommented() -> None:
    text = (ROOT / ".streamlit" / "secrets.example.toml").read_text(encoding="utf-8")
    assert access_policy(tomllib.loads(text), environ={}).mode == "open"
    # Copying the example and switching an option on without replacing its placeholder fails.
    with pytest.raises(AccessConfigError, match="password is still the example's placeholder"):
        access_policy(tomllib.loads(uncomment(text, "password")), environ={})
    oidc = uncomment(
        text, "redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"
    )
    with pytest.raises(AccessConfigError, match="cookie_secret is still the example's placeholder"):
        access_policy(tomllib.loads(oidc), environ={})


# -- the allow-list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "allowed"),
    [
        ("alice@example.com", True),
        ("Alice@EXAMPLE.com", True),
        ("  bob@example.com ", True),
        ("carol@b.example.org", True),
        ('"odd@local"@example.com', True),  # a quoted local part may hold an "@"
        ("eve@evil-example.com", False),
        ("eve@example.com.evil.net", False),
        ("eve@sub.example.com", False),  # subdomains are not implied
        ("eve@example.co", False),
        ("eve@example.com.", False),
        ("eve@example.com@evil.net", False),  # the domain is after the last "@"
        ("eve@@example.com", True),  # the domain is still example.com; the provider vouched
        ("@example.com", False),
        ("example.com", False),
        ("", False),
        ("eve@exämple.com", False),
    ],
)
def test_domain_allowed_is_exact_and_case_insensitive(email: str, allowed: bool) -> None:
    assert domain_allowed(email, ("example.com", "b.example.org")) is allowed


def test_internationalised_domains_compare_in_ascii_form() -> None:
    assert domain_allowed("anna@bücher.example", ["xn--bcher-kva.example"])
    assert domain_allowed("anna@xn--bcher-kva.example", ["BÜCHER.example"])


def test_empty_allow_list_allows_nobody() -> None:
    assert not domain_allowed("alice@example.com", [])


def test_refusal_requires_verified_email_when_reported() -> None:
    domains = ("example.com",)
    assert refusal({"email": "alice@example.com"}, domains) is None
    assert refusal({"email": "alice@example.com", "email_verified": True}, domains) is None
    assert refusal({"email": "alice@example.com", "email_verified": "true"}, domains) is None
    for flag in (False, "false", None, 0, ""):
        reason = refusal({"email": "alice@example.com", "email_verified": flag}, domains)
        assert reason is not None and "not verified" in reason
    other = refusal({"email": "bob@other.org", "email_verified": True}, domains)
    assert other == "`bob@other.org` is not at a domain allowed to open this dashboard."
    missing = refusal({"name": "No Mail"}, domains)
    assert missing is not None and "did not share your e-mail address" in missing


def test_without_allow_list_every_signed_in_account_passes() -> None:
    assert refusal({"email": "anyone@anywhere.net", "email_verified": False}, ()) is None


# -- the password -----------------------------------------------------------------------------


def test_password_matches() -> None:
    assert password_matches(PASSWORD, PASSWORD)
    assert not password_matches(PASSWORD + " ", PASSWORD)
    assert not password_matches(PASSWORD.upper(), PASSWORD)
    assert not password_matches("", PASSWORD)
    # The same text typed composed or decomposed (é as one or two code points) is the same.
    assert password_matches("caf\u00e9 au lait 2024", "cafe\u0301 au lait 2024")


def test_password_is_compared_with_compare_digest_on_equal_length_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    # auth looks hmac.compare_digest up at each call, so the spy sees the real comparisons.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not password_matches("short", PASSWORD)
    assert password_matches(PASSWORD, PASSWORD)
    assert len(seen) == 2
    for a, b in seen:
        # Bytes of one length whatever was typed, so the comparison leaks neither value nor size.
        assert isinstance(a, bytes) and isinstance(b, bytes) and len(a) == len(b) == 32
        assert PASSWORD.encode() not in (a, b)


# -- the throttle -----------------------------------------------------------------------------


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_locks_after_repeated_failures_and_doubles() -> None:
    clock = Clock()
    throttle = Throttle(lock_after=3, first_lockout=30, max_lockout=100, clock=clock)
    first = throttle.failure("203.0.113.1")
    assert (first.failures, first.locked_for, first.left_before_lock) == (1, 0.0, 2)
    assert throttle.retry_after("203.0.113.1") == 0
    assert throttle.failure("203.0.113.1").left_before_lock == 1
    third = throttle.failure("203.0.113.1")
    assert (third.locked_for, third.left_before_lock) == (30, 0)
    assert throttle.retry_after("203.0.113.1") == 30
    # Another client is not affected.
    assert throttle.retry_after("203.0.113.2") == 0
    clock.now += 10
    assert throttle.retry_after("203.0.113.1") == 20
    clock.now += 20
    assert throttle.retry_after("203.0.113.1") == 0
    assert throttle.failure("203.0.113.1").locked_for == 60
    clock.now += 60
    assert throttle.failure("203.0.113.1").locked_for == 100  # capped at max_lockout
    clock.now += 100
    assert throttle.failure("203.0.113.1").locked_for == 100


def test_throttle_success_and_quiet_time_clear_the_record() -> None:
    clock = Clock()
    throttle = Throttle(lock_after=2, first_lockout=5, forget_after=3600, clock=clock)
    throttle.failure("a")
    throttle.success("a")
    assert throttle.failure("a").failures == 1
    clock.now += 3601
    assert throttle.failure("a").failures == 1
    throttle.failure("a")
    assert throttle.retry_after("a") == 5


def test_throttle_keeps_a_bounded_number_of_clients() -> None:
    clock = Clock()
    throttle = Throttle(lock_after=1, first_lockout=60, max_clients=3, clock=clock)
    for client in ("a", "b", "c", "d"):
        throttle.failure(client)
    assert throttle.retry_after("a") == 0  # the oldest record went first
    assert [throttle.retry_after(c) for c in ("b", "c", "d")] == [60, 60, 60]


def test_throttle_counts_every_failure_from_many_threads() -> None:
    throttle = Throttle(lock_after=10_000)
    threads = [
        threading.Thread(target=lambda: [throttle.failure("x") for _ in range(200)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.failure("x").failures == 8 * 200 + 1


def test_wait_text() -> None:
    assert [auth.wait_text(s) for s in (0.2, 29.6, 119, 120, 3599, 7200)] == [
        "1 s",
        "30 s",
        "119 s",
        "2 min",
        "60 min",
        "2 h",
    ]


# -- misconfiguration pages (AppTest) ---------------------------------------------------------


def element_kinds(at: AppTest) -> tuple[list[str], list[str]]:
    main = [type(node).__name__ for node in at.main.children.values()]
    sidebar = [type(node).__name__ for node in at.sidebar.children.values()]
    return main, sidebar


@pytest.mark.parametrize(
    ("secrets_table", "expected"),
    [
        ({"access": {"allowed_domains": ["example.com"]}}, "[access] allowed_domains is set"),
        ({"access": {"password": "tiny-secret"}}, "[access] password is shorter than 12"),
        ({"auth": valid_auth(), "access": {"password": PASSWORD}}, "both [auth]"),
    ],
)
def test_misconfiguration_page_shows_only_the_error(
    secrets_table: dict[str, Any], expected: str
) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.secrets.update(secrets_table)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Sign-in is misconfigured"]
    assert len(at.error) == 1 and expected in at.error[0].value
    # Nothing but the title, the error and its caption: no demo banner, sidebar or navigation.
    assert element_kinds(at) == (["Title", "Error", "Caption"], [])
    assert "tiny-secret" not in at.error[0].value and PASSWORD not in at.error[0].value


def test_password_page_in_apptest_shows_only_the_form() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.secrets["access"] = {"password": PASSWORD}
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert element_kinds(at)[1] == []
    assert not at.metric and not at.info  # no KPIs, no demo banner


# -- a Streamlit server and Chromium ----------------------------------------------------------


@dataclass
class App:
    url: str
    cwd: Path
    database: Path
    log: Path


@contextmanager
def streamlit_app(cwd: Path, port: int, database: Path) -> Iterator[App]:
    """Run `streamlit run app.py` from `cwd` (where .streamlit/secrets.toml is) on `port`."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")
    env = dict(os.environ, MONITOR_DATABASE_URL=f"sqlite:///{database}")
    for name in ("MONITOR_CONFIG", auth.PASSWORD_ENV, "STREAMLIT_SECRETS_FILES"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    log_path = cwd / "streamlit.log"
    with streamlit_server(cwd, env, log_path, port) as url:
        yield App(url=url, cwd=cwd, database=database, log=log_path)


def write_secrets(folder: Path, text: str) -> None:
    secrets_dir = folder / ".streamlit"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    (secrets_dir / "secrets.toml").write_text(text, encoding="utf-8")
    (secrets_dir / "secrets.toml").chmod(0o600)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Return headless system Chromium, driven by Playwright."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM}")
    require(importlib.util.find_spec("playwright"), "playwright is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def tab(chromium: Any, forwarded_for: str | None = None) -> Iterator[Any]:
    """Open a fresh browser context (no cookies); optionally as a client behind a proxy."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    context = chromium.new_context(
        viewport={"width": 1400, "height": 900}, extra_http_headers=headers
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_until_idle(page: Any) -> None:
    """Wait until the app's script run has finished, so the DOM holds everything it will draw."""
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=FIRST_RENDER_MS)
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=FIRST_RENDER_MS)


def assert_nothing_but_sign_in(page: Any) -> None:
    """The brand, the sidebar, the navigation and every figure are absent from the DOM."""
    wait_until_idle(page)
    content = page.content()
    assert "Northwind" not in content
    assert "Demo data" not in content
    for test_id in ("stSidebar", "stSidebarNav", "stMetric", "stDataFrame"):
        assert page.locator(f'[data-testid="{test_id}"]').count() == 0, test_id
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.get_by_test_id("stException").count() == 0


# -- the shared password, in a browser --------------------------------------------------------


@pytest.fixture(scope="module")
def password_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    cwd = tmp_path_factory.mktemp("password_cwd")
    write_secrets(cwd, f'[access]\npassword = "{PASSWORD}"\n')
    database = tmp_path_factory.mktemp("password_db") / "demo.db"
    with streamlit_app(cwd, _free_port(), database) as app:
        yield app


def submit_password(page: Any, password: str) -> None:
    field_ = page.get_by_label("Password", exact=True)
    field_.fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
def test_password_gate_throttles_and_then_opens_the_overview(
    chromium: Any, password_app: App
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    attacker, colleague = "203.0.113.10", "198.51.100.20"
    with tab(chromium, forwarded_for=attacker) as page:
        page.goto(password_app.url + "/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=FIRST_RENDER_MS)
        assert_nothing_but_sign_in(page)
        # Not a single query before sign-in: the database was never even opened.
        assert not password_app.database.exists()

        for left in (4, 3, 2, 1):
            submit_password(page, f"wrong guess {left}")
            plural = "s" if left != 1 else ""
            expect(page.get_by_test_id("stAlert")).to_have_text(
                f"Wrong password. After {left} more failed attempt{plural}, "
                "sign-in from this address pauses."
            )
        submit_password(page, "wrong guess 0")
        expect(page.get_by_test_id("stAlert")).to_contain_text(
            "Too many failed attempts: sign-in from this address is paused for 30 s."
        )
        # While paused even the right password is refused unseen: a pause cannot test guesses.
        submit_password(page, PASSWORD)
        expect(page.get_by_test_id("stAlert")).to_contain_text("Try again in")
        assert_nothing_but_sign_in(page)
        # A reload is a new session, but the count is kept per client for the whole server.
        page.reload()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        submit_password(page, PASSWORD)
        expect(page.get_by_test_id("stAlert")).to_contain_text("Try again in")
        assert_nothing_but_sign_in(page)
        assert not password_app.database.exists()
        assert PASSWORD not in page.content()

    # A colleague at another address is not locked out by the attacker.
    with tab(chromium, forwarded_for=colleague) as page:
        page.goto(password_app.url + "/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=FIRST_RENDER_MS)
        submit_password(page, PASSWORD)
        expect(page.get_by_test_id("stMetric")).to_have_count(4, timeout=FIRST_RENDER_MS)
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Northwind Bank")
        expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Overview")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in with the team password")
        assert PASSWORD not in page.content()

        page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert_nothing_but_sign_in(page)

        # A link to a page asks for the password first (no "Page not found"), then opens it.
        page.goto(password_app.url + "/explorer")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert_nothing_but_sign_in(page)
        expect(page.get_by_role("dialog")).to_have_count(0)
        submit_password(page, PASSWORD)
        expect(page.get_by_role("heading", name="Mentions", exact=True)).to_be_visible(
            timeout=FIRST_RENDER_MS
        )

        # Rotating the password signs open sessions out at their next run. Streamlit notices
        # the edited file through a file watcher, a moment later: navigate until it has.
        write_secrets(password_app.cwd, '[access]\npassword = "a brand new team password"\n')
        heading = page.get_by_role("heading", name="Sign in")
        for attempt in range(30):
            link = page.get_by_test_id("stSidebarNav").get_by_role(
                "link", name=("Overview", "Sources")[attempt % 2]
            )
            try:
                link.click(timeout=3000)
                expect(heading).to_be_visible(timeout=3000)
                break
            except (AssertionError, PlaywrightTimeout):
                if heading.count():  # signed out between two checks
                    break
        expect(heading).to_be_visible()
        assert_nothing_but_sign_in(page)

    log = password_app.log.read_text(errors="replace")
    assert f"Dashboard sign-in failed from {attacker} (5 in a row)" in log
    assert colleague not in log
    assert PASSWORD not in log and "wrong guess" not in log


# -- OIDC, in a browser, against a provider run here ------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Provider:
    """A small OpenID Connect provider: discovery, a sign-in form, tokens, and its signing keys.

    Any e-mail typed into its form signs in (it is the test's stand-in for a company's identity
    provider); `unverified` addresses get `email_verified: false`. Every protocol check a real
    provider makes on the client (client secret, redirect URI, single-use code, PKCE) is made,
    and a failed one is recorded in `errors`.
    """

    client_id: str
    client_secret: str
    redirect_uri: str
    unverified: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    issued: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}, private=True)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "use": "sig", "alg": "RS256"}]}

    def sign_in_form(self, query: dict[str, str]) -> str:
        problems = []
        if query.get("client_id") != self.client_id:
            problems.append(f"unknown client_id {query.get('client_id')!r}")
        if query.get("redirect_uri") != self.redirect_uri:
            problems.append(f"unregistered redirect_uri {query.get('redirect_uri')!r}")
        if query.get("response_type") != "code":
            problems.append("response_type is not code")
        if "openid" not in query.get("scope", "").split():
            problems.append("scope lacks openid")
        for needed in ("state", "nonce", "code_challenge"):
            if not query.get(needed):
                problems.append(f"no {needed}")
        if query.get("code_challenge_method") != "S256":
            problems.append("PKCE method is not S256")
        if problems:
            self.errors.extend(problems)
            return "<h1>Invalid request</h1><p>" + html.escape("; ".join(problems)) + "</p>"
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query[name])}">'
            for name in ("state", "nonce", "redirect_uri", "code_challenge")
        )
        return (
            "<!doctype html><title>Test identity provider</title><h1>Test identity provider</h1>"
            f'<form method="post" action="{self.url}/approve">{hidden}'
            '<label>E-mail <input name="email" type="email"></label>'
            "<button>Continue</button></form>"
        )

    def approve(self, form: dict[str, str]) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = form
        return f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form['state']})}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            self.errors.append("token: bad client credentials")
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)  # codes are single-use
        if form.get("grant_type") != "authorization_code" or grant is None:
            self.errors.append("token: unknown or reused code")
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            self.errors.append("token: redirect_uri differs from the authorize request")
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant["code_challenge"]:
            self.errors.append("token: PKCE code_verifier does not match")
            return 400, {"error": "invalid_grant"}
        from joserfc import jwt

        email = grant["email"]
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": hashlib.sha256(email.encode()).hexdigest()[:20],
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": email,
            "email_verified": email not in self.unverified,
            "name": email.partition("@")[0].title(),
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, self.key)
        self.issued.append(claims)
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid email profile",
            "id_token": id_token,
        }


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, json.dumps(provider.discovery()), "application/json")
            elif parts.path == "/jwks":
                self._send(200, json.dumps(provider.jwks()), "application/json")
            elif parts.path == "/authorize":
                self._send(200, provider.sign_in_form(query), "text/html; charset=utf-8")
            else:
                self._send(404, "not found", "text/plain")

        def do_POST(self) -> None:
            if self.path == "/approve":
                self.send_response(302)
                self.send_header("Location", provider.approve(self._form()))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/token":
                status, body = provider.token(self._form(), self.headers.get("Authorization"))
                self._send(status, json.dumps(body), "application/json")
            else:
                self._send(404, "not found", "text/plain")

    return Handler


@dataclass
class OidcApp:
    app: App
    provider: Provider


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcApp]:
    port = _free_port()
    redirect_uri = f"http://127.0.0.1:{port}/oauth2callback"
    provider = Provider(
        client_id="repmon-test",
        client_secret=secrets.token_urlsafe(24),
        redirect_uri=redirect_uri,
        unverified={"carol@example.com"},
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    cwd = tmp_path_factory.mktemp("oidc_cwd")
    write_secrets(
        cwd,
        "[auth]\n"
        f'redirect_uri = "{redirect_uri}"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\n'
        f'server_metadata_url = "{provider.url}/.well-known/openid-configuration"\n'
        "\n[access]\n"
        'allowed_domains = ["example.com"]\n',
    )
    database = tmp_path_factory.mktemp("oidc_db") / "demo.db"
    try:
        with streamlit_app(cwd, port, database) as app:
            yield OidcApp(app=app, provider=provider)
    finally:
        httpd.shutdown()
        httpd.server_close()


def sign_in_with_provider(page: Any, oidc: OidcApp, email: str) -> None:
    from playwright.sync_api import expect

    page.goto(oidc.app.url + "/")
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_visible(timeout=FIRST_RENDER_MS)
    button.click()
    page.wait_for_url(f"{oidc.provider.url}/authorize?*")
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(oidc.app.url + "/")


@pytest.mark.browser
def test_oidc_shows_only_a_sign_in_button_before_sign_in(chromium: Any, oidc_app: OidcApp) -> None:
    from playwright.sync_api import expect

    with tab(chromium) as page:
        page.goto(oidc_app.app.url + "/")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=FIRST_RENDER_MS)
        assert_nothing_but_sign_in(page)
        expect(page.get_by_role("button")).to_have_count(1)


@pytest.mark.browser
def test_oidc_user_at_an_allowed_domain_gets_the_overview(chromium: Any, oidc_app: OidcApp) -> None:
    from playwright.sync_api import expect

    with tab(chromium) as page:
        sign_in_with_provider(page, oidc_app, "alice@example.com")
        expect(page.get_by_test_id("stMetric")).to_have_count(4, timeout=FIRST_RENDER_MS)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text("Northwind Bank")
        expect(sidebar).to_contain_text("Signed in as alice@example.com")
        expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Mentions")
        # The provider really issued a signed token for Alice, and no protocol check failed.
        assert [claims["email"] for claims in oidc_app.provider.issued][-1] == "alice@example.com"
        assert oidc_app.provider.errors == []

        assert [c for c in page.context.cookies() if c["name"] == "_streamlit_user"]
        # Signing out deletes the identity cookie and reloads: the new session finds no cookie.
        sidebar.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=FIRST_RENDER_MS)
        assert_nothing_but_sign_in(page)
        assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("bob@other.org", "`bob@other.org` is not at a domain allowed"),
        ("eve@evil-example.com", "`eve@evil-example.com` is not at a domain allowed"),
        ("carol@example.com", "reports `carol@example.com` as not verified"),
    ],
)
def test_oidc_user_at_another_domain_is_refused_and_sees_no_data(
    chromium: Any, oidc_app: OidcApp, email: str, reason: str
) -> None:
    from playwright.sync_api import expect

    with tab(chromium) as page:
        sign_in_with_provider(page, oidc_app, email)
        expect(page.get_by_role("heading", name="Access refused")).to_be_visible(
            timeout=FIRST_RENDER_MS
        )
        shown = reason.replace("`", "")
        expect(page.get_by_test_id("stAlert")).to_contain_text(shown)
        assert_nothing_but_sign_in(page)
        # The provider did sign this user in: the refusal is the dashboard's own.
        assert oidc_app.provider.issued[-1]["email"] == email
        assert oidc_app.provider.errors == []
        if email == "bob@other.org":  # once is enough: each page load costs seconds
            # Signing out leads back to the sign-in button, to try another account.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible(
                timeout=FIRST_RENDER_MS
            )
            assert_nothing_but_sign_in(page)


# -- a broken secrets file keeps the dashboard closed -----------------------------------------


@pytest.mark.browser
def test_unreadable_secrets_file_keeps_the_dashboard_closed(
    chromium: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    cwd = tmp_path_factory.mktemp("broken_cwd")
    # A quote left open: Streamlit cannot parse the file, and must not read it as "no secrets".
    write_secrets(cwd, f'[access]\npassword = "{PASSWORD}\n')
    database = tmp_path_factory.mktemp("broken_db") / "demo.db"
    with streamlit_app(cwd, _free_port(), database) as app, tab(chromium) as page:
        page.goto(app.url + "/")
        expect(page.get_by_role("heading", name="Sign-in is misconfigured")).to_be_visible(
            timeout=FIRST_RENDER_MS
        )
        expect(page.get_by_test_id("stAlert").first).to_contain_text(
            "The secrets could not be read"
        )
        assert_nothing_but_sign_in(page)
        assert PASSWORD not in page.content()
        assert not database.exists()
