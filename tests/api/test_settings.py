"""Settings: environment, TOML file, precedence, and refusal of insecure or unknown values."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.errors import ConfigError
from api.settings import load_settings, settings_table


def test_defaults_are_safe() -> None:
    settings = load_settings()
    assert (
        settings.host,
        settings.port,
        settings.allow_plaintext,
        settings.metrics_public,
        settings.store,
    ) == ("127.0.0.1", 8470, False, False, "sqlite")


def test_environment_then_toml_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tw.toml"
    config.write_text('port = 9001\nlog_level = "debug"\ndata_dir = "/srv/tw"\n', encoding="utf-8")
    monkeypatch.setenv("TRUSTWATCH_CONFIG", str(config))
    monkeypatch.setenv("TRUSTWATCH_PORT", "9002")
    settings = load_settings()
    assert (9002, "debug", Path("/srv/tw")) == (
        settings.port,
        settings.log_level,
        settings.data_dir,
    )
    assert load_settings(port=9003).port == 9003


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TRUSTWATCH_HOST": "0.0.0.0"},  # noqa: S104 - refusing this is the point
            "host 0.0.0.0 is not loopback and no TLS is configured",
        ),
        ({"TRUSTWATCH_TLS_CERT": "/x.pem"}, "tls_cert and tls_key go together"),
        ({"TRUSTWATCH_PORT": "http"}, "TRUSTWATCH_PORT: Input should be a valid integer"),
        (
            {"TRUSTWATCH_PORT": "70000"},
            "TRUSTWATCH_PORT: Input should be less than or equal to 65535",
        ),
        ({"TRUSTWATCH_STORE": "mysql"}, "TRUSTWATCH_STORE: Input should be 'sqlite'"),
        ({"TRUSTWATCH_MAX_BODY_BYTES": "1"}, "TRUSTWATCH_MAX_BODY_BYTES"),
        ({"TRUSTWATCH_PROT": "1"}, "unknown setting(s) TRUSTWATCH_PROT"),
        ({"TRUSTWATCH_CONFIG": "/nonexistent.toml"}, "TRUSTWATCH_CONFIG names /nonexistent.toml"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in str(caught.value)


def test_plaintext_beyond_loopback_must_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTWATCH_HOST", "0.0.0.0")  # noqa: S104 - the point of the test
    monkeypatch.setenv("TRUSTWATCH_ALLOW_PLAINTEXT", "true")
    assert load_settings().allow_plaintext


def test_a_toml_file_with_unknown_keys_or_bad_syntax_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tw.toml"
    monkeypatch.setenv("TRUSTWATCH_CONFIG", str(config))
    config.write_text("prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="TRUSTWATCH_PROT: Extra inputs are not permitted"):
        load_settings()
    config.write_text("port = \n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_settings()


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [name for name, _, _ in settings_table() if f"`{name}`" not in readme]
    assert missing == []
