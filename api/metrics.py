"""Prometheus metrics and the request middleware that feeds them.

Each app owns its registry (no process-global state), so tests and several apps in one process
do not share counters. The middleware also writes the access log and adds the security headers
every response carries; it is plain ASGI because Starlette's ``BaseHTTPMiddleware`` costs a
task per request.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("trustwatch.access")

_SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class Metrics:
    """The service's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "trustwatch_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trustwatch_http_request_duration_seconds",
            "Time to answer, by route template",
            ["route"],
            registry=self.registry,
        )
        self.ingest_records = Counter(
            "trustwatch_ingest_records",
            "Records received by ingest, by outcome (accepted, duplicate, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.ingest_batches = Counter(
            "trustwatch_ingest_batches", "Ingest requests stored", registry=self.registry
        )
        self.ingest_bytes = Counter(
            "trustwatch_ingest_bytes",
            "Decompressed bytes of stored ingest requests",
            registry=self.registry,
        )
        self.alerts = Counter(
            "trustwatch_alerts",
            "Detections stored as alerts, by outcome (opened, merged into an open one)",
            ["outcome"],
            registry=self.registry,
        )
        self.suppressed = Counter(
            "trustwatch_detections_suppressed",
            "Detections a false-positive suppression kept from opening an alert",
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            "trustwatch_delivery_attempts",
            "Attempts to deliver a notification, by receiver and outcome (delivered, retry, dead)",
            ["receiver", "outcome"],
            registry=self.registry,
        )
        self.notifications = Gauge(
            "trustwatch_notifications",
            "Notifications in the outbox, by receiver and state (pending, sending, delivered,"
            " dead, muted)",
            ["receiver", "state"],
            registry=self.registry,
        )
        self.sensors_seen = Gauge(
            "trustwatch_sensors", "Sensors registered in the store", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMiddleware:
    """Times each HTTP request, counts it by route template, logs it, adds security headers."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],  # never the query string or headers: no secrets
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
