"""Sensors: heartbeats (sensor tokens) and the list with last-seen and counters (analysts)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.auth import ReaderPrincipal, SensorPrincipal
from api.body import read_json_body
from api.dependencies import ClockDep, StoreDep
from api.errors import BadRequestError, ForbiddenError, UnprocessableError
from api.store.protocol import SensorInfo
from sensors.wire import Heartbeat, describe_error

router = APIRouter(tags=["sensors"])

_HEARTBEAT_LIMIT = 64 * 1024  # a heartbeat is a few hundred bytes


@router.post(
    "/api/v1/sensors/heartbeat",
    status_code=204,
    summary="A sensor's sign of life and counters",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Heartbeat.model_json_schema()}},
        }
    },
)
async def heartbeat(
    request: Request, principal: SensorPrincipal, store: StoreDep, clock: ClockDep
) -> None:
    body = await read_json_body(
        request, max_bytes=_HEARTBEAT_LIMIT, max_decompressed=_HEARTBEAT_LIMIT
    )
    try:
        beat = Heartbeat.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"malformed JSON: {exc}") from exc
    except ValidationError as exc:
        raise UnprocessableError(f"invalid heartbeat: {describe_error(exc)}") from exc
    if beat.sensor_id != principal.sensor_id:
        raise ForbiddenError(
            f"this token belongs to sensor {principal.sensor_id!r}, not {beat.sensor_id!r}"
        )
    store.record_heartbeat(beat.sensor_id, beat.sensor_version, beat.counters, clock())


@router.get("/api/v1/sensors", summary="Registered sensors", response_model=list[SensorInfo])
def list_sensors(_: ReaderPrincipal, store: StoreDep) -> list[SensorInfo]:
    return store.list_sensors()
