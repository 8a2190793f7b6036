"""Standard Webhooks signatures: our signer and verifier, and the `standardwebhooks` package as
the reference they must agree with both ways."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.delivery.errors import (
    MalformedHeadersError,
    SecretError,
    SignatureMismatchError,
    TimestampToleranceError,
    VerificationError,
)
from api.delivery.signing import (
    MAX_ID_LENGTH,
    MAX_SIGNATURES,
    SignedDelivery,
    SigningKey,
    sign_headers,
    signature,
    verify,
)

standardwebhooks = pytest.importorskip("standardwebhooks.webhooks")

# The specification's test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = SigningKey.from_secret(SPEC_SECRET)
OLD = SigningKey(b"old secret of the coordination centre")
NEW = SigningKey(b"new secret of the coordination centre")
SIGNED_AT = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
BODY = b'{"alert": {"id": "a-1", "severity": "high"}}'


@pytest.mark.parametrize(
    "module", ["api.delivery.signing", "api.delivery.journal", "api.delivery.receiver"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert (0, True) == (result.failed, result.attempted > 0)


def test_the_specification_vector() -> None:
    assert {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    } == sign_headers([KEY], SPEC_ID, SIGNED_AT, SPEC_BODY)


def test_round_trip() -> None:
    headers = sign_headers([KEY], "msg_1", SIGNED_AT + timedelta(microseconds=999_999), BODY)
    assert "1614265330" == headers["webhook-timestamp"]  # whole seconds, rounded down
    assert SignedDelivery("msg_1", SIGNED_AT) == verify([KEY], headers, BODY, now=SIGNED_AT)


def test_header_names_in_any_case() -> None:
    headers = {
        name.title(): value for name, value in sign_headers([KEY], "m", SIGNED_AT, BODY).items()
    }
    assert "Webhook-Signature" in headers
    assert "m" == verify([KEY], headers, BODY, now=SIGNED_AT).id


def _tamper_body(h: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return h, BODY.replace(b"high", b"low")


def _tamper_id(h: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return {**h, "webhook-id": "msg_2"}, BODY


def _tamper_timestamp(h: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return {**h, "webhook-timestamp": str(SPEC_TIMESTAMP + 1)}, BODY


def _tamper_signature(h: dict[str, str]) -> tuple[dict[str, str], bytes]:
    version, _, encoded = h["webhook-signature"].partition(",")
    flipped = ("A" if encoded[0] != "A" else "B") + encoded[1:]
    return {**h, "webhook-signature": f"{version},{flipped}"}, BODY


@pytest.mark.parametrize(
    "tamper",
    [_tamper_body, _tamper_id, _tamper_timestamp, _tamper_signature],
)
def test_tampering_is_refused(
    tamper: Callable[[dict[str, str]], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(sign_headers([KEY], "msg_1", SIGNED_AT, BODY))
    with pytest.raises(SignatureMismatchError, match="no signature matches"):
        verify([KEY], headers, body, now=SIGNED_AT)


def test_another_key_is_refused() -> None:
    headers = sign_headers([OLD], "msg_1", SIGNED_AT, BODY)
    with pytest.raises(SignatureMismatchError):
        verify([NEW], headers, BODY, now=SIGNED_AT)


def test_rotation_signs_with_both_and_either_verifies() -> None:
    headers = sign_headers([OLD, NEW], "msg_1", SIGNED_AT, BODY)
    assert [
        signature(OLD, "msg_1", SPEC_TIMESTAMP, BODY),
        signature(NEW, "msg_1", SPEC_TIMESTAMP, BODY),
    ] == headers["webhook-signature"].split(" ")
    for keys in ([OLD], [NEW], [NEW, OLD]):
        assert "msg_1" == verify(keys, headers, BODY, now=SIGNED_AT).id
    # ... and a receiver that holds both accepts a sender that has moved on to the new one
    only_new = sign_headers([NEW], "msg_2", SIGNED_AT, BODY)
    assert "msg_2" == verify([OLD, NEW], only_new, BODY, now=SIGNED_AT).id


def test_other_versions_and_garbage_entries_are_skipped() -> None:
    good = signature(KEY, "m", SPEC_TIMESTAMP, BODY)
    encoded = good.partition(",")[2]
    headers = {"webhook-id": "m", "webhook-timestamp": str(SPEC_TIMESTAMP)}
    for passing in (f"v1a,{encoded} {good}", f"v1,!!! nonsense {good}", f"  {good}  "):
        assert (
            "m" == verify([KEY], {**headers, "webhook-signature": passing}, BODY, now=SIGNED_AT).id
        )
    for failing in (f"v2,{encoded}", f"v1a,{encoded}", "v1,", f"v1,{encoded[:-4]}", encoded):
        with pytest.raises(SignatureMismatchError):
            verify([KEY], {**headers, "webhook-signature": failing}, BODY, now=SIGNED_AT)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-id": None}, "the webhook-id header is missing"),
        ({"webhook-timestamp": None}, "the webhook-timestamp header is missing"),
        ({"webhook-signature": None}, "the webhook-signature header is missing"),
        ({"webhook-signature": "  "}, "the webhook-signature header is missing"),
        ({"webhook-id": "two words"}, "webhook-id must be 1 to 256 visible ASCII characters"),
        ({"webhook-id": "x" * (MAX_ID_LENGTH + 1)}, "webhook-id must be 1 to 256"),
        ({"webhook-id": "caf\u00e9"}, "webhook-id must be 1 to 256"),
        ({"webhook-timestamp": "1.6e9"}, "webhook-timestamp must be whole Unix seconds"),
        ({"webhook-timestamp": "-1614265330"}, "webhook-timestamp must be whole Unix seconds"),
        ({"webhook-timestamp": "\uff11\uff16"}, "webhook-timestamp must be whole Unix seconds"),
        ({"webhook-timestamp": "1" * 13}, "webhook-timestamp must be whole Unix seconds"),
        ({"webhook-signature": " ".join(["v1,x"] * (MAX_SIGNATURES + 1))}, "more than 16"),
    ],
)
def test_malformed_headers(change: dict[str, str | None], message: str) -> None:
    headers: dict[str, str] = sign_headers([KEY], "msg_1", SIGNED_AT, BODY)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with pytest.raises(MalformedHeadersError) as raised:
        verify([KEY], headers, BODY, now=SIGNED_AT)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("offset", "tolerance", "refused"),
    [
        (timedelta(seconds=300), timedelta(minutes=5), None),  # the bounds are inside
        (timedelta(seconds=-300), timedelta(minutes=5), None),
        (timedelta(seconds=300, microseconds=1), timedelta(minutes=5), "older than"),
        (timedelta(seconds=301), timedelta(minutes=5), "older than"),
        (timedelta(seconds=-301), timedelta(minutes=5), "in the future"),
        (timedelta(days=365), timedelta(minutes=5), "older than"),
        (timedelta(seconds=31), timedelta(seconds=30), "older than"),
        (timedelta(seconds=30), timedelta(seconds=30), None),
    ],
)
def test_tolerance_edges(offset: timedelta, tolerance: timedelta, refused: str | None) -> None:
    headers = sign_headers([KEY], "msg_1", SIGNED_AT, BODY)
    now = SIGNED_AT + offset
    if refused is None:
        assert "msg_1" == verify([KEY], headers, BODY, now=now, tolerance=tolerance).id
    else:
        with pytest.raises(TimestampToleranceError, match=refused):
            verify([KEY], headers, BODY, now=now, tolerance=tolerance)


def test_a_far_future_timestamp_is_refused_not_an_overflow() -> None:
    headers = {"webhook-id": "m", "webhook-timestamp": "999999999999"}
    headers["webhook-signature"] = signature(KEY, "m", 999999999999, BODY)
    with pytest.raises(TimestampToleranceError, match="in the future"):
        verify([KEY], headers, BODY, now=SIGNED_AT)


def test_an_unsigned_stale_delivery_is_a_bad_signature_first() -> None:
    # Only an authentic delivery learns that its timestamp was the problem.
    headers = sign_headers([OLD], "msg_1", SIGNED_AT, BODY)
    with pytest.raises(SignatureMismatchError):
        verify([KEY], headers, BODY, now=SIGNED_AT + timedelta(days=1))


def test_each_refusal_carries_its_http_status() -> None:
    assert [400, 400, 401, 401] == [
        VerificationError.status,
        MalformedHeadersError.status,
        SignatureMismatchError.status,
        TimestampToleranceError.status,
    ]


def test_secrets() -> None:
    assert KEY == SigningKey.from_secret(SPEC_SECRET.removeprefix("whsec_"))
    assert SPEC_SECRET == KEY.secret
    assert "SigningKey()" == repr(KEY)
    # Padding may be left out, as the reference allows.
    assert SigningKey(b"se") == SigningKey.from_secret("whsec_c2U")
    for bad, message in [
        ("whsec_", "the signing secret is empty"),
        ("", "the signing secret is empty"),
        ("whsec_c2VjcmV0a", "not whsec_ followed by base64"),  # 4n+1 characters: never base64
        ("whsec_c2Vj!mV0", "not whsec_ followed by base64"),
    ]:
        with pytest.raises(SecretError, match=message) as raised:
            SigningKey.from_secret(bad)
        assert "c2V" not in str(raised.value)  # the secret never reaches a message


def test_times_must_carry_a_zone_and_a_key_is_needed() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)  # noqa: DTZ001 - the mistake under test
    with pytest.raises(ValueError, match="signed_at must carry a time zone"):
        sign_headers([KEY], "m", naive, BODY)
    headers = sign_headers([KEY], "m", SIGNED_AT, BODY)
    with pytest.raises(ValueError, match="now must carry a time zone"):
        verify([KEY], headers, BODY, now=naive)
    with pytest.raises(ValueError, match="at least one key"):
        verify([], headers, BODY, now=SIGNED_AT)
    with pytest.raises(ValueError, match="at least one key"):
        sign_headers([], "m", SIGNED_AT, BODY)
    with pytest.raises(ValueError, match="visible ASCII"):
        sign_headers([KEY], "m 1", SIGNED_AT, BODY)


# Interoperability: the package checks the timestamp against the real clock, so these sign now.

_IDS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)
_BODIES = st.text().map(lambda text: text.encode("utf-8"))


@settings(max_examples=50, deadline=None)
@given(msg_id=_IDS, body=_BODIES)
def test_the_reference_verifies_what_we_sign(msg_id: str, body: bytes) -> None:
    headers = sign_headers([KEY], msg_id[:MAX_ID_LENGTH], datetime.now(UTC), body)
    reference = standardwebhooks.Webhook(SPEC_SECRET)
    assert None is reference.verify(body, headers, json_parse=False)


@settings(max_examples=50, deadline=None)
@given(msg_id=_IDS, body=_BODIES)
def test_we_verify_what_the_reference_signs(msg_id: str, body: bytes) -> None:
    msg_id = msg_id[:MAX_ID_LENGTH]
    now = datetime.now(UTC)
    reference = standardwebhooks.Webhook(SPEC_SECRET)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": reference.sign(msg_id, now, body.decode("utf-8")),
    }
    assert msg_id == verify([KEY], headers, body, now=now).id


def test_the_reference_accepts_our_rotation_and_refuses_our_tampering() -> None:
    now = datetime.now(UTC)
    headers = sign_headers([OLD, NEW], "msg_1", now, BODY)
    for key in (OLD, NEW):
        assert {"alert": {"id": "a-1", "severity": "high"}} == standardwebhooks.Webhook(
            key.secret
        ).verify(BODY, headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(OLD.secret).verify(BODY + b" ", headers)
    stale = sign_headers([OLD], "msg_1", now - timedelta(seconds=301), BODY)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(OLD.secret).verify(BODY, stale)
