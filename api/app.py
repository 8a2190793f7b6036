"""The composition root: :func:`create_app` builds the service from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import checkpoint
from api.delivery.errors import DeliveryError
from api.delivery.routing import load_receivers
from api.delivery.worker import DeliveryWorker, RetryPolicy
from api.dependencies import Clock
from api.errors import ApiError, ConfigError, StoreError
from api.limits import SMALL_BODY_LIMIT, BodyLimitMiddleware
from api.metrics import Metrics, RequestMiddleware
from api.pipeline import Pipeline
from api.ratelimit import RateLimiter
from api.ratings import RatingService, run_rescoring
from api.routers import (
    alerts,
    delivery,
    flows,
    health,
    incidents,
    ingest,
    noise,
    providers,
    public,
    rescan,
    scans,
    sensors,
    systems,
    tokens,
    triage,
)
from api.scheduler import app_sink, start_scheduler, stop_scheduler
from api.settings import Settings
from api.store import Store, open_store
from rules.errors import RuleFileError

log = logging.getLogger(__name__)


def service_version() -> str:
    try:
        return version("trustwatch")
    except PackageNotFoundError:
        return "0+unknown"


def _nothing() -> None:
    """Waking a delivery worker that does not run (no receivers, or not started)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock = _utc_now,
    pipeline: Pipeline | None = None,
) -> FastAPI:
    """Build the app. Without ``store``, the one the settings name is opened at start-up and
    closed at shutdown; a given store stays the caller's to close."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = open_store(settings) if owned else store
        app.state.ratings = RatingService(app.state.store, app.state.pipeline)
        state = checkpoint.state_path(settings.data_dir)
        await to_thread.run_sync(checkpoint.restore, app.state.pipeline, state)
        saving = asyncio.create_task(
            checkpoint.run_checkpoints(
                app.state.pipeline, state, settings.anomaly_checkpoint_seconds
            )
        )
        tasks = [saving]
        if receivers:
            worker = DeliveryWorker(
                app.state.store,
                receivers,
                RetryPolicy(settings.delivery_retry_seconds, settings.delivery_max_retry_seconds),
                settings.delivery_timeout_seconds,
                clock,
                app.state.metrics,
            )
            app.state.wake_delivery = worker.wake
            tasks.append(worker.run_logged())
        try:
            # The scan scheduler, once the store and the rating service are there: None unless
            # settings.scheduler is on and this process wins <data_dir>/scheduler.lock.
            app.state.scheduler = await to_thread.run_sync(
                start_scheduler, settings, app.state.store, app_sink(app.state), clock
            )
            if app.state.scheduler is not None:
                # Where the scheduler runs (one process per deployment), ratings are also
                # recomputed periodically: incidents decay and probations end with time.
                tasks.append(
                    asyncio.create_task(
                        run_rescoring(app.state.ratings, clock, settings.rescore_interval_seconds)
                    )
                )
            yield
        finally:
            await to_thread.run_sync(stop_scheduler, app.state)  # first: its scans write
            app.state.wake_delivery = _nothing
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                await to_thread.run_sync(checkpoint.save, app.state.pipeline, state)
            except OSError as exc:
                log.error("anomaly state not saved at shutdown", extra={"error": str(exc)})
            if owned:
                app.state.store.close()

    app = FastAPI(
        title="TrustWatch",
        version=service_version(),
        description="Cyber-incident early warning and digital-trust ratings.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.wake_delivery = _nothing
    try:
        receivers = load_receivers(settings.receivers)
    except DeliveryError as exc:
        raise ConfigError(str(exc)) from exc
    app.state.metrics = Metrics()
    if pipeline is None:
        pipeline = _pipeline(settings)
    app.state.pipeline = pipeline
    app.state.public_limiter = RateLimiter(
        settings.public_rate_per_second, settings.public_burst, settings.public_max_clients
    )
    if store is not None:
        app.state.store = store
        app.state.ratings = RatingService(store, pipeline)

    _install(app, settings)
    return app


def _pipeline(settings: Settings) -> Pipeline:
    try:
        return Pipeline.from_directories(
            settings.rules_dir, anomaly=settings.anomaly_detection, intel=settings.threat_intel_file
        )
    except RuleFileError as exc:
        raise ConfigError(f"threat_intel_file: {exc}") from exc


# The public lookup right after the health check: routes are matched in order, and the
# public ones carry the heaviest unauthenticated traffic (bench/lookup.py).
ROUTERS: Final = (
    health,
    public,
    ingest,
    sensors,
    flows,
    scans,
    alerts,
    triage,
    noise,
    delivery,
    systems,
    tokens,
    providers,
    incidents,
    rescan,
)


def _install(app: FastAPI, settings: Settings) -> None:
    """The routes, the error handlers and the middleware."""
    for module in ROUTERS:
        app.include_router(module.router)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error", extra={"error": str(exc)})
        return JSONResponse(
            {"detail": "the store is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    # Added last is outermost: the request middleware also counts and logs refused bodies.
    app.add_middleware(
        BodyLimitMiddleware,
        default=SMALL_BODY_LIMIT,
        per_path={"/api/v1/ingest": settings.max_body_bytes},
    )
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics)
