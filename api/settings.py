"""The service's configuration: one typed, frozen object built once at start-up.

Sources, highest precedence first: explicit values (tests, the CLI), ``TRUSTWATCH_*``
environment variables, then the TOML file named by ``TRUSTWATCH_CONFIG`` (keys are the field
names below). Nothing is read at import time.

Insecure combinations are refused rather than defaulted: serving beyond loopback without TLS
needs ``allow_plaintext = true`` (meaning a TLS proxy sits in front).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, FilePath, IPvAnyNetwork, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.delivery.routing import GroupField, ReceiverConfig
from api.errors import ConfigError
from sensors.addresses import is_loopback_host

ENV_PREFIX: Final = "TRUSTWATCH_"
# Variables with the prefix that are not service settings: they belong to the sensor, the
# test-suite or point at the config file itself.
_NOT_SETTINGS: Final = frozenset({"CONFIG", "TOKEN", "SENSOR_ID", "TEST_ES_URL"})

MiB: Final = 1 << 20


class Settings(BaseSettings):
    """Every setting of ``trustwatch serve``; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(
        default=Path("trustwatch-data"), description="where the store and the lock live"
    )
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(default=8470, description="TCP port")
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain for HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key for HTTPS")
    allow_plaintext: bool = Field(
        default=False,
        description="serve plain HTTP beyond loopback (only behind a TLS-terminating proxy)",
    )
    store: Literal["sqlite"] = Field(default="sqlite", description="storage backend")
    max_body_bytes: Annotated[int, Field(ge=1024, le=256 * MiB)] = Field(
        default=16 * MiB, description="largest request body, as sent (compressed)"
    )
    max_decompressed_bytes: Annotated[int, Field(ge=1024, le=1024 * MiB)] = Field(
        default=128 * MiB, description="largest request body after gzip decompression"
    )
    max_records_per_batch: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=10_000, description="most records one ingest request may carry"
    )
    rules_dir: Path | None = Field(
        default=None, description="Sigma rules to run besides the built-in pack"
    )
    threat_intel_file: Path | None = Field(
        default=None,
        description="a plain list of IPs, networks and domains (a feed export); reloaded when"
        " it changes",
    )
    alert_dedupe_seconds: Annotated[int, Field(ge=1, le=30 * 86_400)] = Field(
        default=3600, description="repeats of an open alert this close together merge into it"
    )
    anomaly_detection: bool = Field(
        default=True,
        description="run the online anomaly and beaconing detectors beside the rules",
    )
    anomaly_checkpoint_seconds: Annotated[int, Field(ge=10, le=86_400)] = Field(
        default=300, description="how often the anomaly detectors' state is saved (and at exit)"
    )
    receivers: tuple[ReceiverConfig, ...] = Field(
        default=(),
        description="where alerts are delivered: a list of {name, url, secret_file,"
        " min_severity (medium), agencies ([] = all), tlp (amber)}; JSON in the environment,"
        " [[receivers]] tables in the TOML file",
    )
    delivery_max_age_seconds: Annotated[int, Field(ge=60, le=30 * 86_400)] = Field(
        default=86_400,
        description="how long a delivery is retried before it is dead-lettered (replay by hand)",
    )
    delivery_retry_seconds: Annotated[float, Field(ge=0.05, le=3600)] = Field(
        default=1.0, description="the first retry's delay; each next one doubles it (with jitter)"
    )
    delivery_max_retry_seconds: Annotated[float, Field(ge=0.05, le=86_400)] = Field(
        default=600.0, description="the longest delay between two attempts (and Retry-After cap)"
    )
    delivery_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0, description="how long one delivery attempt may take"
    )
    group_by: tuple[GroupField, ...] = Field(
        default=("rule_id",),
        description="alert fields whose values make the group key (source, rule_id, severity,"
        " entity, agency, system_id)",
    )
    group_window_seconds: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=60,
        description="after a group's notification, its next alerts wait this long and go out"
        " together (0: every alert at once)",
    )
    suppression_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="how long a suppression made from a false-positive verdict lasts"
    )
    scheduler: bool = Field(
        default=True,
        description="run the site-scan scheduler here (only the process holding the data"
        " directory's scheduler.lock does)",
    )
    scan_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=4, description="site scans the scheduler runs at once (one thread each)"
    )
    scan_jitter_seconds: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=60,
        description="random delay added to each scheduled scan (at most a tenth of its cadence)",
    )
    rescan_cooldown_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        default=900,
        description="after a provider's rescan is requested, another is refused (429) this long",
    )
    scan_allow_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(),
        description="non-public networks the scheduler may scan (none: public addresses only)",
    )
    scan_nameservers: tuple[
        Annotated[str, Field(pattern=r"^(\[[0-9A-Fa-f:.]+\]:\d+|[0-9A-Fa-f:.]+)$")], ...
    ] = Field(
        default=(),
        description="resolvers the scans ask, IP or IP:port ([v6]:port); none: the system's",
    )
    scan_trust_ca: FilePath | None = Field(
        default=None, description="extra CA certificates scanned sites may chain to (PEM)"
    )
    scan_https_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=443, description="port of the scanned sites' HTTPS (another for test sites)"
    )
    scan_http_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=80, description="port of the scanned sites' plain HTTP"
    )
    scan_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0, description="how long a scan waits for any one read"
    )
    scan_budget_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=180.0, description="the most time one site's scan may take"
    )
    scan_port_rate: Annotated[float, Field(gt=0, le=1000)] = Field(
        default=20.0, description="connection attempts per second of a scan's exposure check"
    )
    rescore_interval_seconds: Annotated[int, Field(ge=60, le=7 * 86_400)] = Field(
        default=3600,
        description="how often every provider is rated again where the scheduler runs (incidents"
        " decay, probations end); scans and incidents rate at once anyway",
    )
    public_rate_per_second: Annotated[float, Field(gt=0, le=100_000)] = Field(
        default=10.0,
        description="public lookup: requests per second each client address may make on average",
    )
    public_burst: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=40, description="public lookup: requests a client may make at once after a pause"
    )
    public_max_clients: Annotated[int, Field(ge=100, le=10_000_000)] = Field(
        default=100_000,
        description="client addresses the public rate limiter remembers (least recent forgotten)",
    )
    metrics_public: bool = Field(
        default=False, description="serve /metrics without a token (else analyst/admin token)"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="log threshold"
    )

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_cert is None and not self.allow_plaintext and not is_loopback_host(self.host):
            raise ValueError(
                f"host {self.host} is not loopback and no TLS is configured: set tls_cert and "
                "tls_key, or allow_plaintext = true if a TLS proxy terminates connections"
            )
        if self.rules_dir is not None and not self.rules_dir.is_dir():
            raise ValueError(f"rules_dir {self.rules_dir} is not a directory")
        if self.threat_intel_file is not None and not self.threat_intel_file.is_file():
            raise ValueError(f"threat_intel_file {self.threat_intel_file} is not a file")
        for receiver in self.receivers:
            if not receiver.secret_file.is_file():
                raise ValueError(
                    f"receiver {receiver.name}: secret_file {receiver.secret_file} is not a file"
                )
        if self.delivery_max_retry_seconds < self.delivery_retry_seconds:
            raise ValueError("delivery_max_retry_seconds must be at least delivery_retry_seconds")
        if self.max_decompressed_bytes < self.max_body_bytes:
            raise ValueError("max_decompressed_bytes must be at least max_body_bytes")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "trustwatch.sqlite3"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(ENV_PREFIX + "CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise :class:`ConfigError` saying what is wrong and where."""
    config_file = os.environ.get(ENV_PREFIX + "CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{ENV_PREFIX}CONFIG names {config_file}, which is not a file")
    unknown = sorted(
        name
        for name in os.environ
        if name.startswith(ENV_PREFIX)
        and name[len(ENV_PREFIX) :] not in _NOT_SETTINGS
        and name[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    )
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; see the README's table")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from exc
    except ValueError as exc:  # a TOML file that does not parse
        raise ConfigError(f"{config_file}: {exc}") from exc


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for the README."""
    rows = []
    for name, info in Settings.model_fields.items():
        rows.append((ENV_PREFIX + name.upper(), repr(info.default), info.description or ""))
    return rows


def _describe(exc: ValidationError, config_file: str | None) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in error["loc"])
        name = f"{ENV_PREFIX}{loc.upper()}" if loc else "settings"
        parts.append(f"{name}: {error['msg']}")
    where = f" (environment or {config_file})" if config_file else ""
    return "invalid configuration" + where + ": " + "; ".join(parts)
