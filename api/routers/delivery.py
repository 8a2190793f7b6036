"""The outbox as analysts and admins see it: notifications to the coordination centre, their
attempts, and (admins) the manual replay of a dead one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from api.auth import AdminPrincipal, ReaderPrincipal
from api.cursors import decode_cursor, encode_cursor
from api.dependencies import ClockDep, StoreDep
from api.errors import NotFoundError
from api.store.protocol import Notification

router = APIRouter(tags=["delivery"])

NotificationId = Annotated[str, Path(pattern=r"^msg_[0-9a-f]{32}$")]


class NotificationList(BaseModel):
    items: list[Notification]
    next_cursor: str | None


@router.get(
    "/api/v1/deliveries", response_model=NotificationList, summary="Notifications, newest first"
)
def list_deliveries(
    _: ReaderPrincipal,
    store: StoreDep,
    state: Literal["pending", "sending", "delivered", "dead", "muted"] | None = None,
    receiver: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NotificationList:
    after = decode_cursor(cursor, str) if cursor else None
    page = store.query_notifications(state, receiver, after, limit)
    return NotificationList(
        items=page.items,
        next_cursor=encode_cursor(*page.next_after) if page.next_after else None,
    )


@router.get(
    "/api/v1/deliveries/{notification_id}",
    response_model=Notification,
    summary="A notification with every attempt",
)
def get_delivery(
    notification_id: NotificationId, _: ReaderPrincipal, store: StoreDep
) -> Notification:
    found = store.get_notification(notification_id)
    if found is None:
        raise NotFoundError(f"no notification {notification_id}")
    return found


@router.post(
    "/api/v1/deliveries/{notification_id}/replay",
    response_model=Notification,
    summary="Send a dead notification again (same webhook-id: the receiver dedupes)",
)
def replay(
    notification_id: NotificationId,
    _: AdminPrincipal,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
) -> Notification:
    found = store.replay_notification(notification_id, clock())
    if found is None:
        raise NotFoundError(f"no notification {notification_id}")
    request.app.state.wake_delivery()
    return found
