"""Configuration: where it comes from, and errors that name the file and the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings

GOOD = """
[brand]
name = "Northwind Bank"
aliases = ["Northwind", "@NorthwindBank", "northwindbank.com"]
exclude = ["Northwind Traders"]

[[events]]
at = "2024-05-18T15:00:00Z"
label = "CEO apology"
kind = "response"

[[events]]
at = "2024-05-14T16:00:00Z"
label = "Breach disclosed"
kind = "disclosure"

[storage]
url = "sqlite:///data/monitor.db"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "monitor.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_brand_events_and_storage(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.brand.name == "Northwind Bank"
    assert settings.brand.terms == (
        "Northwind Bank",
        "Northwind",
        "@NorthwindBank",
        "northwindbank.com",
    )
    assert settings.brand.exclude == ("Northwind Traders",)
    assert [e.label for e in settings.events] == ["Breach disclosed", "CEO apology"]  # time order
    assert settings.disclosure is not None
    assert settings.disclosure.at == datetime(2024, 5, 14, 16, tzinfo=UTC)
    assert not settings.is_demo


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "team"
    folder.mkdir()
    settings = load_settings(write(folder, GOOD))
    assert settings.database_url == f"sqlite:///{folder.resolve() / 'data' / 'monitor.db'}"


def test_no_config_means_the_demo() -> None:
    settings = load_settings()
    assert settings.is_demo
    assert settings.brand.name == "Northwind Bank"
    assert settings.database_url == "sqlite:///data/demo.db"


def test_monitor_toml_in_the_working_folder_is_found(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    assert not load_settings().is_demo


def test_precedence_flag_over_environment_over_secrets_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / ".streamlit").mkdir()
    write(tmp_path / ".streamlit", '[storage]\nurl = "sqlite:///from-secrets.db"\n', "secrets.toml")
    assert load_settings(path).database_url.endswith("from-secrets.db")
    monkeypatch.setenv("MONITOR_DATABASE_URL", "sqlite:////tmp/from-env.db")
    assert load_settings(path).database_url == "sqlite:////tmp/from-env.db"
    assert (
        load_settings(path, database_url="sqlite:////tmp/flag.db").database_url
        == "sqlite:////tmp/flag.db"
    )


def test_config_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.replace("Northwind Bank", "Harbor Mutual", 1), "elsewhere.toml")
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    assert load_settings().brand.name == "Harbor Mutual"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[brand]\nnmae = "x"\n', "unknown key [brand] 'nmae'"),
        ("[brand]\naliases = []\n", "[brand] name is missing"),
        ('[brand]\nname = "X"\naliases = "X Corp"\n', "[brand] aliases must be a list of strings"),
        (
            '[brand]\nname = "X"\n[[events]]\nat = "yesterday"\nlabel = "x"\n',
            'at = "yesterday" is not a date-time',
        ),
        (
            '[brand]\nname = "X"\n[[events]]\nat = "2024-05-14T16:00:00"\nlabel = "x"\n',
            "has no time zone",
        ),
        (
            '[brand]\nname = "X"\n[[events]]\nat = "2024-05-14T16:00:00Z"\nlabel = "x"\nkind = "oops"\n',
            "kind = 'oops'",
        ),
        (
            '[brand]\nname = "X"\n[storage]\nurl = "postgresql://u:s3cret@db/m"\n',
            "contains a password",
        ),
        ("[brand\nname = 1", "is not valid TOML"),
        ('[brand]\nname = "X"\n[surprise]\n', "unknown key top level 'surprise'"),
    ],
)
def test_bad_config_gets_one_clear_message_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as problem:
        load_settings(path)
    message = str(problem.value)
    assert expected in message
    assert str(path) in message
    assert "s3cret" not in message


def test_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("MONITOR_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(
        ConfigError, match=r"gone.toml does not exist \(named by \$MONITOR_CONFIG\)"
    ):
        load_settings()


def test_the_example_config_loads_and_every_source_in_it_exists() -> None:
    from monitor.collectors import REGISTRY
    from tests.conftest import ROOT

    settings = load_settings(ROOT / "monitor.example.toml")
    assert settings.disclosure is not None
    assert set(settings.sources) <= set(REGISTRY)


def test_secrets_in_lists_are_redacted_too() -> None:
    from monitor.config import redact_secrets

    secrets = {
        "alerts": {"notify": ["mailto://u:Pa55word@smtp.example", "json://hook.example/t0ken-xyz"]}
    }
    text = "failed: mailto://u:Pa55word@smtp.example and json://hook.example/t0ken-xyz"
    redacted = redact_secrets(text, secrets)
    assert "Pa55word" not in redacted and "t0ken-xyz" not in redacted
