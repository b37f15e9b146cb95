"""ServiceSettings: env prefix per service, validation with clear errors, frozen."""

import pydantic
import pytest
from puppet_runtime import ServiceSettings
from pydantic_settings import SettingsConfigDict


class XSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PUPPET_X_", frozen=True, extra="ignore")

    port: int = 50077
    upstream_addr: str


def load() -> XSettings:
    """`XSettings()` as a service's main() calls it: every value from the environment."""
    # Typed as the base class: without the pydantic mypy plugin, mypy would demand the required
    # field as an __init__ argument, though pydantic-settings reads it from the environment.
    settings_cls: type[ServiceSettings] = XSettings
    settings = settings_cls()
    assert isinstance(settings, XSettings)
    return settings


def test_defaults(monkeypatch):
    monkeypatch.setenv("PUPPET_X_UPSTREAM_ADDR", "127.0.0.1:1")
    settings = load()
    assert (settings.host, settings.port, settings.log_format) == ("127.0.0.1", 50077, "json")
    assert (settings.drain_s, settings.shutdown_grace_s, settings.metrics_port) == (1.0, 5.0, None)
    assert settings.request_timeout_s == 10.0


def test_reads_prefixed_env_and_ignores_unknown_keys(monkeypatch):
    monkeypatch.setenv("PUPPET_X_UPSTREAM_ADDR", "memory:50052")
    monkeypatch.setenv("PUPPET_X_PORT", "0")
    monkeypatch.setenv("PUPPET_X_LOG_LEVEL", "debug")
    monkeypatch.setenv("PUPPET_X_LOG_FORMAT", "text")
    monkeypatch.setenv("PUPPET_X_METRICS_PORT", "9464")
    monkeypatch.setenv("PUPPET_X_NOT_A_SETTING", "whatever")
    monkeypatch.setenv("PORT", "1")  # an unprefixed variable must not leak in
    settings = load()
    assert settings.upstream_addr == "memory:50052"
    assert (settings.port, settings.log_level, settings.log_format) == (0, "DEBUG", "text")
    assert settings.metrics_port == 9464


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("PUPPET_X_PORT", "abc", "port"),
        ("PUPPET_X_PORT", "70000", "port"),
        ("PUPPET_X_LOG_FORMAT", "xml", "log_format"),
        ("PUPPET_X_LOG_LEVEL", "LOUD", "log_level"),
        ("PUPPET_X_DRAIN_S", "-1", "drain_s"),
        ("PUPPET_X_REQUEST_TIMEOUT_S", "0", "request_timeout_s"),
    ],
)
def test_rejects_bad_values_naming_the_field(monkeypatch, env, value, field):
    monkeypatch.setenv("PUPPET_X_UPSTREAM_ADDR", "127.0.0.1:1")
    monkeypatch.setenv(env, value)
    with pytest.raises(pydantic.ValidationError) as caught:
        load()
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert field in str(caught.value)


def test_missing_required_setting_is_named(monkeypatch):
    monkeypatch.delenv("PUPPET_X_UPSTREAM_ADDR", raising=False)
    with pytest.raises(pydantic.ValidationError, match="upstream_addr"):
        load()


def test_frozen():
    settings = XSettings(upstream_addr="a:1")
    with pytest.raises(pydantic.ValidationError):
        settings.port = 1


def test_fields_are_documented():
    assert "free one" in (ServiceSettings.model_fields["port"].description or "")
