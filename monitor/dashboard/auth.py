"""Who may open the dashboard: OIDC sign-in with an e-mail-domain allow-list, or a team password.

Everything is configured in `.streamlit/secrets.toml` (docs/deployment.md):

- `[auth]` is Streamlit's own OIDC configuration (`st.login`, `st.user`, `st.logout`).
  `[access] allowed_domains` optionally limits it to accounts at the listed e-mail domains,
  compared exactly and case-insensitively; a provider that reports `email_verified` must
  report it true. `[access] provider` picks one of several `[auth.NAME]` providers.
- `[access] password` (or `$MONITOR_DASHBOARD_PASSWORD`) is one shared password for a small
  team, compared in constant time, with failed attempts throttled per client address.

With neither, the dashboard is open (a single user on their own machine). With either, `gate()`
runs first in app.py and nothing else renders until the visitor is through: no brand, no
sidebar, no navigation, no database access. A configuration mistake shows a page naming the
key and the fix, and never opens the dashboard.

The parsing, the allow-list and the throttle are plain functions and classes; only `gate()`
and `account_panel()` draw with Streamlit.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import streamlit as st
from streamlit.navigation.page import StreamlitPage

logger = logging.getLogger(__name__)

SECRETS = ".streamlit/secrets.toml"
PASSWORD_ENV = "MONITOR_DASHBOARD_PASSWORD"  # noqa: S105 (a variable name, not a password)
ACCESS_KEYS = ("allowed_domains", "password", "provider")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
MIN_PASSWORD_CHARS = 12
# The cookie secret signs the identity cookie: whoever can guess it can forge any user.
MIN_COOKIE_SECRET_CHARS = 32
PLACEHOLDER = "change-me"

SESSION_KEY = "access_password_ok"

Mode = Literal["open", "oidc", "password"]


class AccessConfigError(ValueError):
    """An access-control setting is wrong, worded for the person who has to fix it."""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may open the dashboard, as configured."""

    mode: Mode = "open"
    # The `[auth.NAME]` provider to sign in with; None is the flat `[auth]` table.
    provider: str | None = None
    allowed_domains: tuple[str, ...] = ()
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Access:
    """The visitor app.py lets through: how they signed in and who they are."""

    mode: Mode
    who: str = ""


# -- configuration ----------------------------------------------------------------------------


def access_policy(
    secrets_table: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> AccessPolicy:
    """Return the access policy configured in the secrets (and environment); raise on mistakes."""
    environ = os.environ if environ is None else environ
    access = secrets_table.get("access", {})
    if not isinstance(access, Mapping):
        raise AccessConfigError(
            f"{SECRETS}: [access] must be a table, e.g. `[access]` on its own line followed by "
            '`password = "..."` or `allowed_domains = ["example.com"]`.'
        )
    unknown = sorted(set(access) - set(ACCESS_KEYS))
    if unknown:
        raise AccessConfigError(
            f"{SECRETS}: unknown key [access] {unknown[0]!r}. Known keys: {', '.join(ACCESS_KEYS)}."
        )
    auth = secrets_table.get("auth")
    password = _password(access, environ)
    domains = _domains(access["allowed_domains"]) if "allowed_domains" in access else None

    if auth is None:
        if domains is not None:
            raise AccessConfigError(
                f"{SECRETS}: [access] allowed_domains is set but there is no [auth] table. The "
                "allow-list applies to OIDC sign-in (st.login): add [auth] with redirect_uri, "
                "cookie_secret, client_id, client_secret and server_metadata_url "
                "(docs/deployment.md), or remove allowed_domains."
            )
        if "provider" in access:
            raise AccessConfigError(
                f"{SECRETS}: [access] provider is set but there is no [auth] table. Add "
                f"[auth.{access['provider']}] (docs/deployment.md), or remove provider."
            )
        if password:
            return AccessPolicy(mode="password", password=password)
        return AccessPolicy()

    if password:
        where = f"${PASSWORD_ENV}" if environ.get(PASSWORD_ENV) else "[access] password"
        raise AccessConfigError(
            f"{SECRETS}: both [auth] (OIDC sign-in) and {where} are set. Use one: remove "
            f"{where} to sign in through your identity provider, or remove [auth] to use the "
            "shared password."
        )
    if not isinstance(auth, Mapping):
        raise AccessConfigError(f"{SECRETS}: [auth] must be a table (docs/deployment.md).")
    provider = _check_auth(auth, access.get("provider"))
    return AccessPolicy(mode="oidc", provider=provider, allowed_domains=domains or ())


def _password(access: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Return the shared password ($MONITOR_DASHBOARD_PASSWORD first), or "" when none is set."""
    from_env = environ.get(PASSWORD_ENV, "")
    if from_env:
        value: object = from_env
        where = f"${PASSWORD_ENV}"
    elif "password" in access:
        value = access["password"]
        where = f"{SECRETS}: [access] password"
    else:
        return ""
    # Never put the value itself in a message: these messages are shown on the page.
    if not isinstance(value, str):
        raise AccessConfigError(f'{where} must be a string in quotes, e.g. password = "...".')
    if len(value) < MIN_PASSWORD_CHARS:
        raise AccessConfigError(
            f"{where} is shorter than {MIN_PASSWORD_CHARS} characters. Set a long random one, "
            'e.g. the output of `python -c "import secrets; print(secrets.token_urlsafe(18))"`.'
        )
    if PLACEHOLDER in value.lower():
        raise AccessConfigError(
            f"{where} is still the example's placeholder. Replace it with a long random one."
        )
    return value


_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def normalise_domain(domain: str) -> str | None:
    """Return `domain` lower-cased in its ASCII (IDNA) form, or None when it is not a host name."""
    text = domain.strip().lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(text) > 253 or not _DOMAIN.fullmatch(text):
        return None
    return text


def _domains(raw: object) -> tuple[str, ...]:
    """Return the allow-list's domains, normalised; raise with the fix for a bad entry."""
    key = f"{SECRETS}: [access] allowed_domains"
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise AccessConfigError(f'{key} must be a list of domains, e.g. ["example.com"].')
    if not raw:
        raise AccessConfigError(
            f"{key} is empty, which would let nobody in. List at least one domain, or remove the "
            "key to let in every account your identity provider signs in."
        )
    domains: list[str] = []
    for item in raw:
        entry = item.strip()
        if entry.startswith(("@", "*", ".")):
            raise AccessConfigError(
                f"{key}: {item!r} is not a domain. Write the domain alone, e.g. "
                f'"{entry.lstrip("@*.")}"; every subdomain you allow must be listed on its own.'
            )
        domain = normalise_domain(entry)
        if domain is None:
            raise AccessConfigError(f'{key}: {item!r} is not a domain name like "example.com".')
        domains.append(domain)
    return tuple(dict.fromkeys(domains))


def _check_auth(auth: Mapping[str, Any], provider: object) -> str | None:
    """Check the [auth] table st.login reads; return the provider name (None: flat [auth])."""
    redirect = auth.get("redirect_uri")
    if not isinstance(redirect, str) or not redirect:
        raise AccessConfigError(
            f"{SECRETS}: [auth] redirect_uri is missing. Set it to the dashboard's public address "
            'followed by /oauth2callback, e.g. "https://monitor.example.com/oauth2callback", '
            "and register the same address with your identity provider."
        )
    parts = urlsplit(redirect)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AccessConfigError(
            f"{SECRETS}: [auth] redirect_uri must be an absolute http(s) address, "
            'e.g. "https://monitor.example.com/oauth2callback".'
        )
    if not parts.path.endswith("/oauth2callback"):
        raise AccessConfigError(
            f"{SECRETS}: [auth] redirect_uri must end with /oauth2callback, the path where "
            "Streamlit receives the provider's answer."
        )
    cookie_secret = auth.get("cookie_secret")
    if not isinstance(cookie_secret, str) or len(cookie_secret) < MIN_COOKIE_SECRET_CHARS:
        raise AccessConfigError(
            f"{SECRETS}: [auth] cookie_secret is missing or shorter than "
            f"{MIN_COOKIE_SECRET_CHARS} characters. It signs the sign-in cookie; set it to the "
            'output of `python -c "import secrets; print(secrets.token_hex(32))"`.'
        )
    if PLACEHOLDER in cookie_secret.lower():
        raise AccessConfigError(
            f"{SECRETS}: [auth] cookie_secret is still the example's placeholder. Replace it with "
            'the output of `python -c "import secrets; print(secrets.token_hex(32))"`.'
        )

    named = {
        name: table
        for name, table in auth.items()
        if isinstance(table, Mapping) and any(key in table for key in PROVIDER_KEYS)
    }
    if provider is not None:
        if not isinstance(provider, str) or provider not in named:
            choices = ", ".join(f"[auth.{name}]" for name in sorted(named)) or "none"
            raise AccessConfigError(
                f"{SECRETS}: [access] provider = {provider!r} names no provider table "
                f"(found: {choices}). Add [auth.{provider}] or fix the name."
            )
        name: str | None = provider
    elif any(key in auth for key in PROVIDER_KEYS):
        name = None
    elif len(named) == 1:
        name = next(iter(named))
    elif named:
        raise AccessConfigError(
            f"{SECRETS}: [auth] has several providers ({', '.join(sorted(named))}). Name the "
            'one to sign in with, e.g. [access] provider = "' + sorted(named)[0] + '".'
        )
    else:
        raise AccessConfigError(
            f"{SECRETS}: [auth] names no identity provider. Add client_id, client_secret and "
            "server_metadata_url to [auth] (docs/deployment.md)."
        )
    if name is not None and "_" in name:
        raise AccessConfigError(
            f"{SECRETS}: [auth.{name}]: Streamlit refuses provider names with an underscore. "
            "Rename the table (and [access] provider) without one."
        )
    section = auth if name is None else named[name]
    where = "[auth]" if name is None else f"[auth.{name}]"
    for key in PROVIDER_KEYS:
        value = section.get(key)
        if not isinstance(value, str) or not value:
            raise AccessConfigError(
                f"{SECRETS}: {where} {key} is missing. Copy it from your identity provider's "
                "app registration (docs/deployment.md)."
            )
    metadata = urlsplit(str(section["server_metadata_url"]))
    if metadata.scheme not in ("http", "https") or not metadata.netloc:
        raise AccessConfigError(
            f"{SECRETS}: {where} server_metadata_url must be the absolute address of the "
            "provider's discovery document, ending in /.well-known/openid-configuration."
        )
    return name


# -- who is allowed ---------------------------------------------------------------------------


def email_domain(email: str) -> str | None:
    """Return the normalised domain of an e-mail address, or None when it has none."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return None
    return normalise_domain(domain)


def domain_allowed(email: str, domains: Iterable[str]) -> bool:
    """Return whether `email` is at one of `domains`: exactly, ignoring case; subdomains are not.

    An empty allow-list allows nobody: the caller decides whether an allow-list applies.
    """
    domain = email_domain(email)
    if domain is None:
        return False
    allowed = {normalise_domain(entry) for entry in domains}
    return domain in allowed


def _is_true(value: object) -> bool:
    # Most providers send a JSON boolean; a few (e.g. AWS Cognito) send the string "true".
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def refusal(claims: Mapping[str, Any], allowed_domains: Iterable[str]) -> str | None:
    """Return why a signed-in user may not open the dashboard, or None when they may."""
    domains = tuple(allowed_domains)
    if not domains:
        return None
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        return (
            "Your identity provider did not share your e-mail address, so it cannot be checked "
            "against the allowed domains. Ask the administrator to request the `email` scope."
        )
    shown = email.strip().replace("`", "")
    if "email_verified" in claims and not _is_true(claims["email_verified"]):
        return (
            f"Your identity provider reports `{shown}` as not verified. Verify the address "
            "with the provider, then sign in again."
        )
    if not domain_allowed(email, domains):
        return f"`{shown}` is not at a domain allowed to open this dashboard."
    return None


# -- the shared password ----------------------------------------------------------------------


def _digest(text: str) -> bytes:
    # Digests have one length whatever the input, so the comparison cannot leak the length.
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).digest()


def password_matches(given: str, expected: str) -> bool:
    """Return whether `given` is the password, comparing in constant time."""
    return hmac.compare_digest(_digest(given), _digest(expected))


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Failure:
    """What one more failed attempt did: how many in a row, and how long the client now waits."""

    failures: int
    locked_for: float
    left_before_lock: int


class Throttle:
    """Failed sign-ins per client: free at first, then lock-outs that double each time.

    The first `lock_after - 1` failures cost nothing (typos). The `lock_after`-th locks the
    client out for `first_lockout` seconds, each further one for twice as long as the last, up
    to `max_lockout`. While locked, attempts are refused without looking at the password, so a
    lock-out cannot be used to test guesses. A success, or `forget_after` seconds without a
    failure, clears the record. At most `max_clients` records are kept (the oldest go first).

    One instance serves the whole process (see THROTTLE): it survives page reloads and new
    sessions, which per-session state would not.
    """

    def __init__(
        self,
        *,
        lock_after: int = 5,
        first_lockout: float = 30.0,
        max_lockout: float = 3600.0,
        forget_after: float = 86_400.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lock_after < 1 or first_lockout <= 0 or max_lockout < first_lockout:
            raise ValueError("lock_after >= 1 and 0 < first_lockout <= max_lockout are required")
        self.lock_after = lock_after
        self.first_lockout = first_lockout
        self.max_lockout = max_lockout
        self.forget_after = forget_after
        self.max_clients = max_clients
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def _current(self, client: str, now: float) -> _Record | None:
        record = self._records.get(client)
        if record is not None and now - record.last_failure > self.forget_after:
            del self._records[client]
            return None
        return record

    def retry_after(self, client: str) -> float:
        """Return the seconds until `client` may try again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            record = self._current(client, now)
            return max(0.0, record.locked_until - now) if record else 0.0

    def failure(self, client: str) -> Failure:
        """Record a failed attempt by `client` and return what it costs."""
        with self._lock:
            now = self._clock()
            record = self._current(client, now) or _Record()
            record.failures += 1
            record.last_failure = now
            locked_for = 0.0
            if record.failures >= self.lock_after:
                doublings = min(record.failures - self.lock_after, 32)
                locked_for = min(self.first_lockout * 2**doublings, self.max_lockout)
                record.locked_until = now + locked_for
            self._records[client] = record
            self._records.move_to_end(client)
            while len(self._records) > self.max_clients:
                self._records.popitem(last=False)
            return Failure(
                failures=record.failures,
                locked_for=locked_for,
                left_before_lock=max(0, self.lock_after - record.failures),
            )

    def success(self, client: str) -> None:
        """Forget `client`'s failures after a successful sign-in."""
        with self._lock:
            self._records.pop(client, None)


# Process-wide on purpose: a reload starts a new Streamlit session, and must not reset the count.
THROTTLE = Throttle()
# Sessions remember a keyed digest of the password they signed in with, never the password, so
# changing the password in secrets.toml signs every session out on its next rerun.
_SESSION_PEPPER = secrets.token_bytes(32)


def _session_token(password: str) -> str:
    return hmac.new(_SESSION_PEPPER, _digest(password), hashlib.sha256).hexdigest()


def wait_text(seconds: float) -> str:
    """Return a lock-out's remaining time in words: "30 s", "2 min", "1 h"."""
    whole = max(1, round(seconds))
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{round(whole / 60)} min"
    return f"{round(whole / 3600)} h"


# -- Streamlit --------------------------------------------------------------------------------


def read_secrets() -> dict[str, Any]:
    """Return Streamlit's secrets; {} when there are none; raise when a secrets file is broken."""
    from streamlit.errors import StreamlitSecretNotFoundError

    try:
        return st.secrets.to_dict()
    except StreamlitSecretNotFoundError as problem:
        # Streamlit raises the same error for "no file" and "a file it cannot parse"; only the
        # first may open the dashboard, so a broken file must not read as "no access control".
        paths = st.get_option("secrets.files") or []
        if any(Path(path).exists() for path in paths):
            raise AccessConfigError(
                f"The secrets could not be read ({problem}). Fix the file and reload."
            ) from None
        return {}


def gate(pages: Sequence[StreamlitPage] = ()) -> Access:
    """Let the visitor through, or draw the sign-in (or the error) and stop the script.

    `pages` are the dashboard's pages, for their addresses only: none of them is run.
    """
    try:
        policy = access_policy(read_secrets())
    except AccessConfigError as problem:
        _misconfigured(str(problem), pages)
    if policy.mode == "password":
        return _password_gate(policy, pages)
    if policy.mode == "oidc":
        return _oidc_gate(policy, pages)
    return Access(mode="open")


def _no_pages(pages: Sequence[StreamlitPage]) -> None:
    """Declare a hidden stand-in, titled "Sign in", at each page's address; run none of them.

    At the same addresses, a link to a page (e.g. /explorer) shows the sign-in instead of
    Streamlit's "Page not found", and opens that page once signed in. Hidden, the navigation
    is not drawn, and the browser forgets the page list of any earlier signed-in run.
    """

    def locked() -> None:
        """Draw nothing: the gate draws the sign-in."""

    stand_ins = [
        st.Page(
            locked, title="Sign in", url_path=page.url_path or "sign-in", default=not page.url_path
        )
        for page in pages
    ]
    st.navigation(stand_ins or [st.Page(locked, title="Sign in")], position="hidden")


def _misconfigured(message: str, pages: Sequence[StreamlitPage]) -> NoReturn:
    _no_pages(pages)
    st.title("Sign-in is misconfigured")
    st.error(message, icon=":material/lock:")
    st.caption("The dashboard stays closed until this is fixed. See docs/deployment.md.")
    logger.error("Dashboard access control is misconfigured: %s", message)
    st.stop()


def _client() -> str:
    # Behind a reverse proxy on this machine, uvicorn replaces the proxy's loopback address by the
    # client's from X-Forwarded-For; local visitors all share the "local" key.
    return st.context.ip_address or "local"


def _password_gate(policy: AccessPolicy, pages: Sequence[StreamlitPage]) -> Access:
    token = _session_token(policy.password)
    if st.session_state.get(SESSION_KEY) == token:
        return Access(mode="password")
    if st.session_state.pop(SESSION_KEY, None) is not None:
        # Signed in with a password that has since changed: reload into a new, empty session
        # (st.logout does that), so nothing of the signed-in page stays in the browser.
        st.logout()
        st.stop()

    _no_pages(pages)
    st.title("Sign in")
    st.caption("This dashboard holds confidential data. Enter the team password to continue.")
    notice = st.empty()
    with st.form("access_sign_in", clear_on_submit=True, enter_to_submit=True):
        given = st.text_input(
            "Password", type="password", key="access_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        st.stop()
    client = _client()
    wait = THROTTLE.retry_after(client)
    if wait > 0:
        notice.error(
            "Too many failed attempts: sign-in from this address is paused. "
            f"Try again in {wait_text(wait)}.",
            icon=":material/timer:",
        )
    elif not given:
        notice.warning("Enter the password.")
    elif password_matches(given, policy.password):
        THROTTLE.success(client)
        st.session_state[SESSION_KEY] = token
        st.rerun()
    else:
        failure = THROTTLE.failure(client)
        logger.warning("Dashboard sign-in failed from %s (%d in a row)", client, failure.failures)
        if failure.locked_for:
            notice.error(
                "Wrong password. Too many failed attempts: sign-in from this address is paused "
                f"for {wait_text(failure.locked_for)}.",
                icon=":material/timer:",
            )
        else:
            left = failure.left_before_lock
            notice.error(
                f"Wrong password. After {left} more failed attempt{'s' if left != 1 else ''}, "
                "sign-in from this address pauses."
            )
    st.stop()


def _oidc_gate(policy: AccessPolicy, pages: Sequence[StreamlitPage]) -> Access:
    if importlib.util.find_spec("authlib") is None:
        _misconfigured(
            pages=pages,
            message=f"{SECRETS} configures [auth] sign-in, which needs Authlib, and it is not "
            'installed. Run `pip install "streamlit[auth]"` (or reinstall repmon: '
            "`pip install -e .`).",
        )
    user = st.user
    if not user.is_logged_in:
        _no_pages(pages)
        st.title("Sign in")
        st.caption(
            "This dashboard holds confidential data. Sign in with your organisation's account."
        )
        label = f"Sign in with {policy.provider.title()}" if policy.provider else "Sign in"
        if st.button(label, type="primary", icon=":material/login:", key="access_login"):
            from streamlit.errors import StreamlitAuthError

            try:
                st.login(policy.provider)
            except StreamlitAuthError as problem:  # checked above; Streamlit may check more
                st.error(str(problem), icon=":material/lock:")
                logger.error("Dashboard sign-in failed to start: %s", problem)
        st.stop()
    claims = dict(user.to_dict())
    reason = refusal(claims, policy.allowed_domains)
    if reason:
        _no_pages(pages)
        st.title("Access refused")
        st.error(reason, icon=":material/block:")
        st.caption("Sign out to try another account.")
        if st.button("Sign out", key="access_refused_sign_out"):
            st.logout()
        st.stop()
    email = claims.get("email")
    name = claims.get("name")
    who = email if isinstance(email, str) and email else name if isinstance(name, str) else ""
    return Access(mode="oidc", who=who or "your account")


def account_panel(access: Access) -> None:
    """Show who is signed in, with a sign-out button, at the foot of the sidebar."""
    if access.mode == "open":
        return
    st.sidebar.divider()
    if access.mode == "password":
        st.sidebar.caption("Signed in with the team password")
    else:
        st.sidebar.caption(f"Signed in as `{access.who.replace('`', '')}`")
    if st.sidebar.button("Sign out", key="access_sign_out", icon=":material/logout:"):
        st.session_state.pop(SESSION_KEY, None)
        # st.logout() also ends a password session well: it deletes the identity cookie (if
        # any) and reloads the page, so the browser starts a new, empty session and drops every
        # element of the signed-in one (a rerun would leave the sidebar's frame behind).
        st.logout()
