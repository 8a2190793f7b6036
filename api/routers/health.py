"""``/healthz`` (public liveness and store check) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import authenticate, bearer_scheme, require
from api.dependencies import MetricsDep, SettingsDep, StoreDep
from api.errors import StoreError
from api.tokens import Role

router = APIRouter(tags=["operations"])
_reader = require(Role.ANALYST, Role.ADMIN)


@router.get("/healthz", summary="Liveness and store health (public)")
def healthz(store: StoreDep, request: Request) -> JSONResponse:
    try:
        store.ping()
    except StoreError:
        return JSONResponse({"status": "unavailable", "store": "unavailable"}, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "store": "ok",
            "version": request.app.version,
            **request.app.state.pipeline.health(),
        },
        status_code=200,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (analyst or admin token unless metrics_public)",
    response_class=Response,
)
def metrics(
    settings: SettingsDep,
    metrics: MetricsDep,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Response:
    if not settings.metrics_public:
        _reader(authenticate(credentials, store))
    metrics.sensors_seen.set(len(store.list_sensors()))
    metrics.notifications.clear()
    for (receiver, state), count in store.delivery_counts().items():
        metrics.notifications.labels(receiver, state).set(count)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
