"""Managing principals: creating one with its token, and the first admin of a new store."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import TypeAdapter, ValidationError

from api.errors import UnprocessableError
from api.store import Store
from api.store.protocol import NewPrincipal, PrincipalInfo
from api.tokens import Role, issue_token
from sensors.wire import SensorId

BOOTSTRAP_ADMIN: Final = "bootstrap-admin"
_SENSOR_ID: Final[TypeAdapter[str]] = TypeAdapter(SensorId)


def create_principal(
    store: Store, role: Role, name: str, sensor_id: str | None, now: datetime
) -> tuple[str, PrincipalInfo]:
    """Make a token and store its principal; return the token (to show once) and the info.

    A sensor token is bound to ``sensor_id``, which defaults to ``name``.
    """
    if role is Role.SENSOR:
        sensor_id = sensor_id if sensor_id is not None else name
        try:
            _SENSOR_ID.validate_python(sensor_id)
        except ValidationError as exc:
            raise UnprocessableError(
                f"sensor id {sensor_id!r}: use letters, digits, '.', '_' or '-', at most 64"
            ) from exc
    elif sensor_id is not None:
        raise UnprocessableError("a sensor id applies to sensor tokens only")
    issued = issue_token()
    info = store.add_principal(
        NewPrincipal(
            name=name,
            role=role,
            key_id=issued.key_id,
            secret_hash=issued.secret_hash,
            sensor_id=sensor_id,
        ),
        now,
    )
    return issued.token, info


def bootstrap_admin(store: Store, now: datetime) -> str | None:
    """On a store with no active admin, create one and return its token; else ``None``."""
    if store.count_active_admins() > 0:
        return None
    token, _ = create_principal(store, Role.ADMIN, BOOTSTRAP_ADMIN, None, now)
    return token
