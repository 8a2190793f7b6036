"""The demo's report: what it read back from the service and the receiver, and its text.

Pure: values in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from api.severity import rank

SENSOR_ID: Final = "demo-lab"
MIN_SEVERITY: Final = "medium"  # what the receiver takes (its default)


@dataclass(frozen=True)
class AlertSummary:
    """An alert as ``GET /api/v1/alerts`` shows it, the parts the report tells."""

    id: str
    title: str
    severity: str
    source: str
    entity: str
    count: int
    events: int
    values: Mapping[str, Any]
    delivery: str | None  # the service's delivery state; None from a service without one

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> AlertSummary:
        evidence, delivery = item.get("evidence") or {}, item.get("delivery")
        return cls(
            id=item["id"],
            title=item["title"],
            severity=item["severity"],
            source=item["source"],
            entity=item["entity"],
            count=item["count"],
            events=int(evidence.get("events", 0)),
            values=evidence.get("values") or {},
            delivery=delivery.get("state") if isinstance(delivery, Mapping) else None,
        )

    @property
    def deliverable(self) -> bool:
        """Whether the receiver must get it: the service says so, or, from a service that does
        not say, its severity reaches the receiver's threshold."""
        if self.delivery is not None:
            return self.delivery == "delivered"
        return rank(self.severity) >= rank(MIN_SEVERITY)


@dataclass(frozen=True)
class Delivery:
    """One delivery the receiver recorded (after verifying its signature)."""

    webhook_id: str
    receiver: str
    alert_ids: tuple[str, ...]
    stix_objects: int


@dataclass(frozen=True)
class Replay:
    """One capture replayed: the flows the service stored, and the alerts they raised."""

    capture: str
    what: str
    flows: int
    duplicates: int
    raised: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    replays: tuple[Replay, ...]
    alerts: tuple[AlertSummary, ...]
    deliveries: tuple[Delivery, ...]
    receiver: str
    receiver_url: str
    service_url: str
    out_file: Path
    logs: Path
    admin_token: str
    data_dir: Path
    temporary: bool
    keep_running: bool


def replay_line(
    capture: str,
    what: str,
    summary: Mapping[str, Any],
    before: Mapping[str, AlertSummary],
    after: Mapping[str, AlertSummary],
) -> Replay:
    """What one capture did: the sensor's summary, and the alerts new or repeated since."""
    raised = []
    for alert in _by_severity(after.values()):
        old = before.get(alert.id)
        if old is None:
            raised.append(f"{alert.title} ({alert.severity})")
        elif alert.count > old.count:
            raised.append(f"{alert.title} again: count {alert.count}")
    return Replay(
        capture, what, int(summary["accepted"]), int(summary["duplicates"]), tuple(raised)
    )


def render(report: Report) -> str:
    """The report as text: what was replayed, the alerts and why, the deliveries, the URLs."""
    url = report.service_url
    lines = [
        "TrustWatch demo: a sensor, the service and a coordination centre's receiver, "
        "each its own process on 127.0.0.1",
        "",
        f"Traffic replayed by `trustwatch sensor net` (sensor {SENSOR_ID})",
    ]
    for replay in report.replays:
        again = f", {replay.duplicates} already stored" if replay.duplicates else ""
        lines.append(f"  {replay.capture:<14}{replay.flows:>5} flows{again}   {replay.what}")
        lines += [f"{'':<30}→ {raised}" for raised in replay.raised]
    total = sum(replay.flows for replay in report.replays)
    lines += [f"  {len(report.replays)} captures, {total} flows ingested", ""]

    sent: dict[str, list[str]] = {}
    for delivery in report.deliveries:
        for alert_id in delivery.alert_ids:
            sent.setdefault(alert_id, []).append(delivery.webhook_id)
    lines.append(f"Alerts: {len(report.alerts)}")
    for alert in _by_severity(report.alerts):
        lines += _alert_lines(alert, sent.get(alert.id, []))

    lines.append(
        f"Delivered to the coordination centre (receiver {report.receiver}, {report.receiver_url})"
    )
    titles = {alert.id: alert.title for alert in report.alerts}
    for delivery in report.deliveries:
        named = ", ".join(titles.get(alert_id, alert_id) for alert_id in delivery.alert_ids)
        lines.append(
            f"  {delivery.webhook_id}  {_plural(len(delivery.alert_ids), 'alert')}: {named}; "
            f"STIX 2.1 bundle of {delivery.stix_objects} objects"
        )
    lines += [
        f"  {_plural(len(report.deliveries), 'delivery')} recorded by the receiver, each only "
        "after it verified the signature",
        f"  {_delivered_once(sent)}",
        "",
        "Look around" + ("" if report.keep_running else " (with --keep-running)"),
        f"  service      {url}/healthz",
        f"  API docs     {url}/docs",
        f"  alerts       {url}/api/v1/alerts",
        f"  deliveries   {url}/api/v1/deliveries",
        f"  metrics      {url}/metrics",
        f"  admin token  {report.admin_token}",
        "               (a throwaway demo store: never use this token or store for real data)",
        f'  try          curl -H "Authorization: Bearer {report.admin_token}" {url}/api/v1/alerts',
        f"  received     {report.out_file}",
        f"  logs         {report.logs}",
        "",
        *_ending(report),
    ]
    return "\n".join(lines) + "\n"


def _alert_lines(alert: AlertSummary, webhooks: Sequence[str]) -> list[str]:
    why = _why(alert.values) or ["(no values)"]
    state = alert.delivery or ("delivered" if webhooks else "not sent")
    where = f" in {', '.join(webhooks)}" if webhooks else ""
    return [
        f"  {alert.severity.upper():<8}{alert.title}",
        f"          source    {alert.source}",
        f"          entity    {alert.entity}; count {alert.count}; "
        f"{_plural(alert.events, 'flow')} as evidence",
        f"          why       {why[0]}",
        *[f"                    {line}" for line in why[1:]],
        f"          delivery  {state}{where}",
        "",
    ]


def _why(values: Mapping[str, Any]) -> list[str]:
    """The values that made an alert fire, one per line; an anomaly's deviating features."""
    lines = []
    for key, value in values.items():
        if key == "explanation" and isinstance(value, list):
            lines += [
                f"{d.get('feature')}: {_number(d.get('value'))} "
                f"(typical {_number(d.get('typical'))}, z {_number(d.get('z'))})"
                for d in value
                if isinstance(d, Mapping)
            ]
        elif isinstance(value, list):
            lines.append(f"{key}: {', '.join(str(_number(v)) for v in value)}")
        else:
            lines.append(f"{key}: {_number(value)}")
    return lines


def _delivered_once(sent: Mapping[str, Sequence[str]]) -> str:
    twice = sorted(alert_id for alert_id, webhooks in sent.items() if len(webhooks) > 1)
    if twice:
        return f"delivered more than once (the receiver dedupes them): {', '.join(twice)}"
    return f"{_plural(len(sent), 'alert')} delivered, each exactly once"


def _ending(report: Report) -> list[str]:
    where = report.data_dir
    if report.temporary:
        kept = f"The temporary directory {where} is removed then; --data-dir DIR keeps one."
    else:
        kept = f"Kept in {where}: `trustwatch serve --data-dir {where}` opens the store again."
    if report.keep_running:
        return ["Running until Ctrl-C (or SIGTERM), then everything stops. " + kept]
    return ["Everything stops now; --keep-running keeps it up to look around. " + kept]


def _by_severity(alerts: Iterable[AlertSummary]) -> list[AlertSummary]:
    return sorted(alerts, key=lambda a: (-rank(a.severity), a.title, a.entity))


def _number(value: object) -> object:
    return f"{value:.4g}" if isinstance(value, float) else value


def _plural(count: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {noun if count == 1 else plural}"
