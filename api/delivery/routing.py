"""Where alerts go: the receivers of the coordination centre, and how alerts are grouped.

A receiver takes the alerts at or above its ``min_severity`` and, when it names ``agencies``,
only those about an information system of one of them (an alert about no declared system has
no agency: only receivers without an agency list take it). An alert goes to every receiver
that takes it, once to each.

Alerts that share a *group key* (the values of the ``group_by`` fields) travel together: the
first one of a group goes out at once, and the ones that follow within ``group_window`` wait
for the window's end and go out as one notification — at most one notification per group and
receiver per window, as Alertmanager's ``group_interval`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.delivery.errors import SecretError
from api.delivery.receiver import read_secret_file
from api.delivery.signing import SigningKey
from api.severity import Severity, rank
from sensors.addresses import is_loopback_host

GroupField = Literal["source", "rule_id", "severity", "entity", "agency", "system_id"]
GROUP_FIELDS: Final = ("source", "rule_id", "severity", "entity", "agency", "system_id")
Tlp = Literal["white", "green", "amber", "red"]


class ReceiverConfig(BaseModel):
    """One receiver, as configured (``receivers`` in the settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    url: Annotated[str, Field(max_length=2000)]
    secret_file: Path = Field(description="whsec_ secrets, one per line (two while rotating)")
    min_severity: Severity = "medium"
    agencies: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()
    tlp: Tlp = "amber"

    @field_validator("url")
    @classmethod
    def _secure_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("url must be an http(s) URL with a host")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials: deliveries are signed instead")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("url must be https (plain http only to loopback)")
        return url

    def takes(self, severity: str, agency: str | None) -> bool:
        """Whether an alert of ``severity`` about ``agency``'s system goes to this receiver.

        >>> r = ReceiverConfig(name="ncc", url="https://ncc.example/hook",
        ...                    secret_file=Path("s"), min_severity="high", agencies=("MOF",))
        >>> r.takes("critical", "MOF"), r.takes("medium", "MOF"), r.takes("high", None)
        (True, False, False)
        """
        if rank(severity) < rank(self.min_severity):
            return False
        return not self.agencies or agency in self.agencies


@dataclass(frozen=True)
class Receiver:
    """A receiver ready to deliver to: its configuration and its signing keys."""

    config: ReceiverConfig
    keys: tuple[SigningKey, ...]

    @property
    def name(self) -> str:
        return self.config.name


def load_receivers(configs: tuple[ReceiverConfig, ...]) -> tuple[Receiver, ...]:
    """Read every receiver's secret file; :class:`SecretError` names the one that fails."""
    names = [config.name for config in configs]
    if len(set(names)) != len(names):
        raise SecretError("receivers: two receivers have the same name")
    receivers = []
    for config in configs:
        try:
            keys = read_secret_file(config.secret_file)
        except SecretError as exc:
            raise SecretError(f"receiver {config.name}: {exc}") from exc
        receivers.append(Receiver(config, keys))
    return tuple(receivers)


@dataclass(frozen=True)
class Routing:
    """What the store needs to route an alert as it stores it."""

    receivers: tuple[ReceiverConfig, ...]
    group_by: tuple[str, ...] = ("rule_id",)
    group_window_us: int = 60_000_000
    max_age_us: int = 86_400_000_000

    def group_key(self, fields: Mapping[str, object]) -> str:
        """The group an alert belongs to: its ``group_by`` values, as canonical JSON.

        >>> Routing((), group_by=("rule_id", "agency")).group_key(
        ...     {"rule_id": "scan", "agency": None, "entity": "10.0.0.1"})
        '{"agency":null,"rule_id":"scan"}'
        """
        return orjson.dumps(
            {name: fields.get(name) for name in self.group_by}, option=orjson.OPT_SORT_KEYS
        ).decode()
