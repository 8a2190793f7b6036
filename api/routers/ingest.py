"""``POST /api/v1/ingest``: batches of records from sensors.

The envelope must be valid as a whole (else 4xx and nothing is stored); its records are then
validated one by one, the valid ones stored in one transaction, and the answer lists every
rejected record with its index and reason. What the answer acknowledges is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import SensorPrincipal
from api.body import gunzip, json_encoding, read_body
from api.dependencies import ClockDep, MetricsDep, SettingsDep, StoreDep
from api.errors import (
    BadRequestError,
    ForbiddenError,
    PayloadTooLargeError,
    UnprocessableError,
)
from api.metrics import Metrics
from api.pipeline import Pipeline
from api.ratings import RatingService
from api.settings import Settings
from api.store import Store
from api.tokens import Principal
from sensors.wire import (
    Envelope,
    FlowRecord,
    IngestReply,
    Rejection,
    ScanRecord,
    describe_error,
    validate_record,
)

router = APIRouter(tags=["ingest"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "An envelope (see `sensors/wire.py`), as JSON, optionally gzip-compressed "
        "(`Content-Encoding: gzip`).",
        "content": {"application/json": {"schema": Envelope.model_json_schema()}},
    }
}


@router.post(
    "/api/v1/ingest",
    summary="Store a batch of records from a sensor",
    response_model=IngestReply,
    openapi_extra=_BODY_DOC,
    responses={
        400: {"description": "malformed JSON or gzip"},
        401: {"description": "no valid token"},
        403: {"description": "not a sensor token, or the envelope names another sensor"},
        413: {"description": "body, decompressed body or batch over its limit"},
        415: {"description": "not JSON, or an unsupported encoding"},
        422: {"description": "the envelope is invalid (records are judged one by one)"},
    },
)
async def ingest(
    request: Request,
    principal: SensorPrincipal,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
    metrics: MetricsDep,
) -> IngestReply:
    encoding = json_encoding(request)
    raw = await read_body(request, max_bytes=settings.max_body_bytes)
    # Decompression, parsing, validation and the store all run in a worker thread: inflating
    # up to max_decompressed_bytes on the event loop would stall every other request.
    return await run_in_threadpool(
        _store_batch,
        raw,
        encoding == "gzip",
        principal,
        settings,
        store,
        clock(),
        metrics,
        request.app.state.pipeline,
        request.app.state.wake_delivery,
        request.app.state.ratings,
    )


def _store_batch(
    raw: bytes,
    compressed: bool,
    principal: Principal,
    settings: Settings,
    store: Store,
    now: datetime,
    metrics: Metrics,
    pipeline: Pipeline,
    wake_delivery: Callable[[], None],
    ratings: RatingService,
) -> IngestReply:
    body = gunzip(raw, settings.max_decompressed_bytes) if compressed else raw
    envelope = parse_envelope(body, principal, settings)
    flows: list[FlowRecord] = []
    scans: list[ScanRecord] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(envelope.records):
        try:
            record = validate_record(item)
        except ValidationError as exc:
            rejected.append(Rejection(index=index, error=describe_error(exc)))
            continue
        if isinstance(record, FlowRecord):
            flows.append(record)
        else:
            scans.append(record)
    counts = store.ingest(envelope.sensor_id, flows, scans, now, detect=pipeline.detect)
    accepted = len(flows) + len(scans)
    metrics.ingest_batches.inc()
    metrics.ingest_bytes.inc(len(body))
    metrics.ingest_records.labels("accepted").inc(counts.inserted)
    metrics.ingest_records.labels("duplicate").inc(counts.duplicates)
    metrics.ingest_records.labels("rejected").inc(len(rejected))
    metrics.alerts.labels("opened").inc(counts.alerts_opened)
    metrics.alerts.labels("merged").inc(counts.alerts_merged)
    metrics.suppressed.inc(counts.alerts_suppressed)
    if counts.queued:
        wake_delivery()  # the alert is committed: the worker may take it now
    if scans and counts.inserted:
        # Ratings follow the scans: the finding states advance and the providers of the
        # scanned sites are rated again (replays of records already seen change nothing).
        ratings.after_scans(envelope.sensor_id, scans, now)
    return IngestReply(accepted=accepted, duplicates=counts.duplicates, rejected=rejected)


def parse_envelope(body: bytes, principal: Principal, settings: Settings) -> Envelope:
    """Parse and check the envelope: JSON, schema, size, and that it is the caller's sensor."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"malformed JSON: {exc}") from exc
    if isinstance(payload, dict):
        records = payload.get("records")
        if isinstance(records, list) and len(records) > settings.max_records_per_batch:
            raise PayloadTooLargeError(
                f"batch of {len(records)} records exceeds the limit of "
                f"{settings.max_records_per_batch}"
            )
    try:
        envelope = Envelope.model_validate(payload)
    except ValidationError as exc:
        raise UnprocessableError(f"invalid envelope: {describe_error(exc)}") from exc
    if envelope.sensor_id != principal.sensor_id:
        raise ForbiddenError(
            f"this token belongs to sensor {principal.sensor_id!r}, not {envelope.sensor_id!r}"
        )
    return envelope
