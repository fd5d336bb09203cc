"""Typed settings and where they come from.

Precedence, highest first: a CLI flag > environment variables > `.streamlit/secrets.toml`
(secrets only) > `monitor.toml` > built-in defaults. The config file is the one named by
`--config`, else `$MONITOR_CONFIG`, else `./monitor.toml` when it exists. With no config
file at all the monitor runs the bundled demo scenario.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.alerts.rules import DEFAULT_RULES, Rule, RuleError, parse_rules
from monitor.models import Event, utc

CONFIG_ENV = "MONITOR_CONFIG"
DATABASE_ENV = "MONITOR_DATABASE_URL"
DEFAULT_CONFIG = Path("monitor.toml")
DEFAULT_DATABASE = "sqlite:///data/monitor.db"
DEMO_DATABASE = "sqlite:///data/demo.db"
SECRETS_FILE = Path(".streamlit/secrets.toml")

EVENT_KINDS = ("disclosure", "response", "legal", "other")

# Keys a user may write, per table. An unknown key is almost always a typo, so it is an error.
KNOWN_KEYS: dict[str, set[str]] = {
    "": {"brand", "events", "storage", "dashboard", "sources", "imports", "collect", "alerts"},
    "brand": {"name", "aliases", "exclude"},
    "events": {"at", "label", "kind"},
    "storage": {"url"},
    "dashboard": {"url", "default_window_days"},
    "collect": {"user_agent", "timeout"},
    "alerts": {"rules", "check_after_collect"},
}


class ConfigError(ValueError):
    """A configuration problem, worded for the person who has to fix it."""


@dataclass(frozen=True, slots=True)
class BrandConfig:
    """Who we monitor: the name, the other ways people write it, and look-alikes to ignore."""

    name: str
    aliases: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def terms(self) -> tuple[str, ...]:
        """Return the name followed by its aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the monitor needs to run, already validated."""

    brand: BrandConfig
    events: tuple[Event, ...] = ()
    database_url: str = DEFAULT_DATABASE
    config_path: Path | None = None
    is_demo: bool = False
    dashboard_url: str = "http://localhost:8501"
    default_window_days: int = 7
    # [sources.NAME] tables, checked by each collector when it runs; [imports.NAME] profiles.
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    imports: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    user_agent: str = ""
    http_timeout: float = 20.0
    alert_rules: tuple[Rule, ...] = DEFAULT_RULES
    check_alerts_after_collect: bool = True
    secrets: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def disclosure(self) -> Event | None:
        """Return the first disclosure event, the anchor of every before/after comparison."""
        disclosures = sorted((e for e in self.events if e.kind == "disclosure"), key=lambda e: e.at)
        return disclosures[0] if disclosures else None


def demo_settings(database_url: str | None = None) -> Settings:
    """Return the settings of the bundled demo scenario."""
    from monitor import demo  # local import: demo pulls in the scorer and its lexicon

    return Settings(
        brand=demo.BRAND,
        events=demo.EVENTS,
        database_url=database_url or os.environ.get(DATABASE_ENV) or DEMO_DATABASE,
        is_demo=True,
    )


def find_config_path(cli_path: str | Path | None = None) -> Path | None:
    """Return the config file to read, or None when there is none (demo mode)."""
    if cli_path:
        path = Path(cli_path)
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist (given with --config).")
        return path
    env_path = os.environ.get(CONFIG_ENV)
    if env_path:
        path = Path(env_path)
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist (named by ${CONFIG_ENV}).")
        return path
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(config: str | Path | None = None, *, database_url: str | None = None) -> Settings:
    """Return the effective settings: the config file, secrets and environment, or the demo."""
    path = find_config_path(config)
    secrets = load_secrets()
    if path is None:
        return demo_settings(database_url)
    raw = _read_toml(path)
    return parse_settings(raw, path=path, secrets=secrets, database_url=database_url)


def load_secrets(path: Path = SECRETS_FILE) -> dict[str, Any]:
    """Return the secrets file's tables, or an empty dict when there is none."""
    if not path.is_file():
        return {}
    return _read_toml(path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}. Fix the syntax and try again."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc


def parse_settings(
    raw: Mapping[str, Any],
    *,
    path: Path,
    secrets: Mapping[str, Any] | None = None,
    database_url: str | None = None,
) -> Settings:
    """Validate a parsed monitor.toml and return settings; raise ConfigError naming file and key."""
    secrets = secrets or {}
    for misplaced in ("auth", "access"):
        if misplaced in raw:
            # Fail closed: read from here, the sign-in would silently not apply.
            raise ConfigError(
                f"{path}: [{misplaced}] belongs in {SECRETS_FILE}, not in monitor.toml: the "
                "dashboard's sign-in is configured with the secrets (docs/deployment.md)."
            )
    _check_keys(raw, "", path)
    brand = _parse_brand(raw.get("brand"), path)
    events = tuple(_parse_event(item, i, path) for i, item in enumerate(_list(raw, "events", path)))
    storage = _table(raw, "storage", path)
    _check_keys(storage, "storage", path)
    if _url_has_password(storage.get("url")):
        raise ConfigError(
            f"{path}: [storage] url contains a password. Secrets never go in monitor.toml: "
            f"set ${DATABASE_ENV} or [storage] url in {SECRETS_FILE} instead."
        )
    secret_storage = (
        secrets.get("storage", {}) if isinstance(secrets.get("storage"), Mapping) else {}
    )
    url = (
        database_url
        or os.environ.get(DATABASE_ENV)
        or secret_storage.get("url")
        or _str(storage, "url", "storage", path, DEFAULT_DATABASE)
    )
    dashboard = _table(raw, "dashboard", path)
    _check_keys(dashboard, "dashboard", path)
    window = dashboard.get("default_window_days", 7)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ConfigError(f"{path}: [dashboard] default_window_days must be a whole number >= 1.")
    alerts = _table(raw, "alerts", path)
    _check_keys(alerts, "alerts", path)
    try:
        rules = parse_rules(alerts.get("rules"), path)
    except RuleError as problem:
        raise ConfigError(str(problem)) from None
    check_after = alerts.get("check_after_collect", True)
    if not isinstance(check_after, bool):
        raise ConfigError(f"{path}: [alerts] check_after_collect must be true or false.")
    collect = _table(raw, "collect", path)
    _check_keys(collect, "collect", path)
    timeout = collect.get("timeout", 20)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"{path}: [collect] timeout must be a number of seconds > 0.")
    return Settings(
        brand=brand,
        events=tuple(sorted(events, key=lambda e: e.at)),
        sources=_tables_of_tables(raw, "sources", path),
        imports=_tables_of_tables(raw, "imports", path),
        user_agent=_str(collect, "user_agent", "collect", path, "-")
        if "user_agent" in collect
        else "",
        http_timeout=float(timeout),
        alert_rules=rules,
        check_alerts_after_collect=check_after,
        database_url=resolve_sqlite_path(str(url), path.parent),
        config_path=path,
        dashboard_url=_str(dashboard, "url", "dashboard", path, "http://localhost:8501"),
        default_window_days=window,
        secrets=secrets,
    )


def resolve_sqlite_path(url: str, base: Path) -> str:
    """Return `url` with a relative SQLite path resolved against `base`, the config folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or url.startswith(prefix + "/"):
        return url
    relative = url[len(prefix) :]
    if relative in ("", ":memory:"):
        return url
    return prefix + str((base / relative).resolve())


def _url_has_password(url: object) -> bool:
    if not isinstance(url, str) or "://" not in url:
        return False
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    return "@" in netloc and ":" in netloc.split("@", 1)[0]


def _check_keys(table: Mapping[str, Any], name: str, path: Path) -> None:
    unknown = sorted(set(table) - KNOWN_KEYS[name])
    if unknown:
        where = f"[{name}] " if name else "top level "
        known = ", ".join(sorted(KNOWN_KEYS[name]))
        raise ConfigError(f"{path}: unknown key {where}'{unknown[0]}'. Known keys: {known}.")


def _table(raw: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: '{key}' must be a table, written [{key}].")
    return value


def _tables_of_tables(raw: Mapping[str, Any], key: str, path: Path) -> dict[str, Mapping[str, Any]]:
    tables = _table(raw, key, path)
    for name, value in tables.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: '{key}.{name}' must be a table, written [{key}.{name}].")
    return dict(tables)


def redact_secrets(text: str, secrets: Mapping[str, Any]) -> str:
    """Return `text` with every secret value in it replaced by ***."""
    for value in _secret_values(secrets):
        text = text.replace(value, "***")
    return text


def _secret_values(secrets: object) -> list[str]:
    """Return every string in a secrets table, however deeply nested in tables and lists."""
    values: list[str] = []
    if isinstance(secrets, Mapping):
        for value in secrets.values():
            values.extend(_secret_values(value))
    elif isinstance(secrets, list | tuple):
        for value in secrets:
            values.extend(_secret_values(value))
    elif isinstance(secrets, str) and len(secrets) >= 4:
        values.append(secrets)
    return sorted(values, key=len, reverse=True)


def _list(raw: Mapping[str, Any], key: str, path: Path) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{path}: '{key}' must be a list of tables, written [[{key}]].")
    return value


def _str(table: Mapping[str, Any], key: str, where: str, path: Path, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: [{where}] {key} must be a non-empty string.")
    return value.strip()


def _strings(table: Mapping[str, Any], key: str, where: str, path: Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f'{path}: [{where}] {key} must be a list of strings, e.g. ["a", "b"].')
    return tuple(v.strip() for v in value)


def _parse_brand(raw: object, path: Path) -> BrandConfig:
    if raw is None:
        raise ConfigError(f'{path}: missing [brand] table. Add [brand] with name = "Your Company".')
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: 'brand' must be a table, written [brand].")
    _check_keys(raw, "brand", path)
    if "name" not in raw:
        raise ConfigError(f'{path}: [brand] name is missing. Add name = "Your Company".')
    return BrandConfig(
        name=_str(raw, "name", "brand", path, ""),
        aliases=_strings(raw, "aliases", "brand", path),
        exclude=_strings(raw, "exclude", "brand", path),
    )


def _parse_event(raw: object, index: int, path: Path) -> Event:
    where = f"events[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: {where} must be a table, written [[events]].")
    _check_keys(raw, "events", path)
    at = raw.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f'{path}: [{where}] at = "{at}" is not a date-time. '
                'Write it as ISO 8601 with a zone, e.g. at = "2024-05-14T16:00:00Z".'
            ) from None
    if not isinstance(at, datetime):
        raise ConfigError(
            f'{path}: [{where}] at is missing or not a date-time, e.g. "2024-05-14T16:00:00Z".'
        )
    if at.tzinfo is None:
        raise ConfigError(
            f'{path}: [{where}] at has no time zone. Add one, e.g. "2024-05-14T16:00:00Z" for UTC.'
        )
    kind = raw.get("kind", "other")
    if kind not in EVENT_KINDS:
        raise ConfigError(
            f"{path}: [{where}] kind = {kind!r}; use one of {', '.join(EVENT_KINDS)}."
        )
    return Event(at=utc(at), label=_str(raw, "label", where, path, ""), kind=kind)
