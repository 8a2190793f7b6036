"""``trustwatch receiver`` as integrators run it: a real process on a loopback port, real
signed POSTs, the out file read back."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from api.delivery.signing import SigningKey, sign_headers

TRUSTWATCH = [sys.executable, "-m", "api.cli"]
KEY = SigningKey(b"the coordination centre's secret, 32b")
OTHER = SigningKey(b"somebody else's secret")
ALERT = {"alert": {"id": "a-1", "severity": "high", "entity": "192.0.2.7"}}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTWATCH_")}
    return {**clean, **(extra or {})}


class Receiver:
    """One ``trustwatch receiver`` process; its log goes to a file (a pipe nobody reads would
    fill up and stall it)."""

    def __init__(
        self,
        tmp: Path,
        out: Path,
        args: Sequence[str],
        env: dict[str, str] | None,
        max_file_size: int | None = None,
    ) -> None:
        self.out = out
        self.log_path = tmp / f"receiver-{time.monotonic_ns()}.log"
        command = TRUSTWATCH
        if max_file_size is not None:  # a disk that fills up, for this process only
            command = [
                sys.executable,
                "-c",
                "import resource, runpy; "
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({max_file_size}, {max_file_size})); "
                "runpy.run_module('api.cli', run_name='__main__', alter_sys=True)",
            ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "receiver", "--port", "0", "--out", str(out), *args],
                stdout=log,
                stderr=log,
                env=_env(env),
            )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"receiving on (http://\S+/)", self.log())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"the receiver exited: {self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"the receiver did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def records(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.out.read_bytes().splitlines()]


Start = Callable[..., Receiver]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    secret_file = tmp_path / "secret"
    secret_file.write_text(KEY.secret + "\n")
    started: list[Receiver] = []

    def _start(
        *args: str,
        out: Path | None = None,
        env: dict[str, str] | None = None,
        max_file_size: int | None = None,
    ) -> Receiver:
        sources = () if env or "--secret" in args else ("--secret-file", str(secret_file))
        receiver = Receiver(
            tmp_path, out or tmp_path / "alerts.jsonl", [*sources, *args], env, max_file_size
        )
        started.append(receiver)
        return receiver

    yield _start
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.process.kill()
            receiver.process.wait(timeout=20)


def post(
    url: str,
    msg_id: str,
    payload: object = ALERT,
    *,
    keys: Sequence[SigningKey] = (KEY,),
    signed_at: datetime | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    content = orjson.dumps(payload) if body is None else body
    headers = sign_headers(keys, msg_id, signed_at or datetime.now(UTC), content)
    return httpx.post(
        url, content=content, headers={**headers, "content-type": "application/json"}, timeout=20
    )


def test_a_delivery_is_recorded_once_and_on_disk(start: Start, tmp_path: Path) -> None:
    receiver = start()
    before = datetime.now(UTC)
    first = post(receiver.url, "msg_1")
    assert (200, {"status": "recorded", "webhook-id": "msg_1"}) == (first.status_code, first.json())
    [record] = receiver.records()
    received_at = datetime.fromisoformat(str(record.pop("received_at")))
    assert before - timedelta(seconds=1) <= received_at <= datetime.now(UTC)
    assert {"webhook-id": "msg_1", "payload": ALERT} == record
    assert 0o600 == receiver.out.stat().st_mode & 0o777

    # A retry is signed afresh (a new timestamp); still one line.
    again = post(receiver.url, "msg_1", signed_at=datetime.now(UTC) + timedelta(seconds=2))
    assert (200, {"status": "duplicate", "webhook-id": "msg_1"}) == (
        again.status_code,
        again.json(),
    )
    assert 1 == len(receiver.records())
    assert 200 == post(receiver.url + "any/path", "msg_2").status_code
    assert ["msg_1", "msg_2"] == [r["webhook-id"] for r in receiver.records()]
    health = httpx.get(receiver.url + "health", timeout=10)
    assert {"status": "ok", "recorded": 2} == health.json()
    assert 0 == receiver.stop()  # SIGTERM: a clean exit


def test_a_restarted_receiver_still_dedupes(start: Start, tmp_path: Path) -> None:
    env = {"TRUSTWATCH_RECEIVER_SECRET": KEY.secret}
    first = start(env=env)
    assert 200 == post(first.url, "msg_1").status_code
    assert 0 == first.stop()
    second = start(env=env)
    assert "(deliveries already in it: 1)" in second.log()
    assert "duplicate" == post(second.url, "msg_1").json()["status"]
    assert "recorded" == post(second.url, "msg_2").json()["status"]
    assert ["msg_1", "msg_2"] == [r["webhook-id"] for r in second.records()]


def test_concurrent_copies_of_one_delivery_make_one_line(start: Start) -> None:
    receiver = start()
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(post(receiver.url, "msg_1").status_code))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [200] * 16 == answers
    assert 1 == len(receiver.records())


def _stale(url: str) -> httpx.Response:
    return post(url, "msg_1", signed_at=datetime.now(UTC) - timedelta(seconds=400))


def _future(url: str) -> httpx.Response:
    return post(url, "msg_1", signed_at=datetime.now(UTC) + timedelta(seconds=400))


def _wrong_key(url: str) -> httpx.Response:
    return post(url, "msg_1", keys=[OTHER])


def _tampered(url: str) -> httpx.Response:
    headers = sign_headers([KEY], "msg_1", datetime.now(UTC), orjson.dumps(ALERT))
    return httpx.post(url, content=orjson.dumps({"alert": "forged"}), headers=headers)


def _unsigned(url: str) -> httpx.Response:
    return httpx.post(url, json=ALERT)


def _not_json(url: str) -> httpx.Response:
    return post(url, "msg_1", body=b"{not json")


@pytest.mark.parametrize(
    ("send", "status", "detail"),
    [
        (_wrong_key, 401, "no signature matches"),
        (_tampered, 401, "no signature matches"),
        (_stale, 401, "webhook-timestamp is older than the tolerance"),
        (_future, 401, "webhook-timestamp is in the future beyond the tolerance"),
        (_unsigned, 400, "the webhook-id header is missing"),
        (_not_json, 400, "the body is not JSON"),
    ],
)
def test_refusals_write_nothing(
    start: Start, send: Callable[[str], httpx.Response], status: int, detail: str
) -> None:
    receiver = start()
    answer = send(receiver.url)
    assert (status, True) == (answer.status_code, detail in answer.json()["detail"])
    assert b"" == receiver.out.read_bytes()
    # ... and the id was not taken: the genuine delivery is recorded afterwards
    assert "recorded" == post(receiver.url, "msg_1").json()["status"]


def test_tolerance_is_configurable(start: Start) -> None:
    receiver = start("--tolerance", "30")
    late = post(receiver.url, "msg_1", signed_at=datetime.now(UTC) - timedelta(seconds=60))
    assert 401 == late.status_code
    assert 200 == post(receiver.url, "msg_1").status_code


def test_rotation_with_two_secrets_on_the_command_line(start: Start) -> None:
    receiver = start("--secret", OTHER.secret, "--secret", KEY.secret)
    assert 200 == post(receiver.url, "msg_1", keys=[OTHER]).status_code
    assert 200 == post(receiver.url, "msg_2", keys=[KEY]).status_code
    assert 200 == post(receiver.url, "msg_3", keys=[SigningKey(b"x"), KEY]).status_code
    assert 3 == len(receiver.records())


def test_a_pretty_printed_body_is_one_line_with_exact_numbers(start: Start) -> None:
    receiver = start()
    body = b'{\n  "n": 123456789012345678901234567890,\n  "name": "caf\xc3\xa9"\n}'
    assert 200 == post(receiver.url, "msg_1", body=body).status_code
    assert [b"123456789012345678901234567890", "café"] == [
        receiver.out.read_bytes().split(b'"n":')[1].split(b",")[0],
        receiver.records()[0]["payload"]["name"],  # type: ignore[index]
    ]


def test_oversize_bodies_are_refused(start: Start) -> None:
    receiver = start()
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    declared = post(receiver.url, "msg_1", body=big)
    assert (413, "body of 1048587 bytes exceeds the limit of 1048576") == (
        declared.status_code,
        declared.json()["detail"],
    )
    headers = sign_headers([KEY], "msg_2", datetime.now(UTC), big)
    chunked = httpx.post(receiver.url, content=iter([big[:4096], big[4096:]]), headers=headers)
    assert (413, "body exceeds the limit of 1048576 bytes") == (
        chunked.status_code,
        chunked.json()["detail"],
    )
    assert b"" == receiver.out.read_bytes()
    small = start("--max-body-bytes", "64", out=receiver.out.with_name("b.jsonl"))
    assert 413 == post(small.url, "msg_3", {"pad": "x" * 64}).status_code
    assert 200 == post(small.url, "msg_4", {"a": 1}).status_code


def test_a_full_disk_is_503_and_leaves_no_partial_line(start: Start) -> None:
    receiver = start("--retry-after", "3", max_file_size=8192)
    assert 200 == post(receiver.url, "msg_1").status_code
    before = receiver.out.read_bytes()
    full = post(receiver.url, "msg_2", {"pad": "x" * 10_000})
    assert (503, "3", "cannot record the delivery: File too large") == (
        full.status_code,
        full.headers.get("retry-after"),
        full.json()["detail"],
    )
    assert before == receiver.out.read_bytes()  # the part that fitted was cut back
    assert "recorded" == post(receiver.url, "msg_2").json()["status"]  # the id was not taken
    assert ["msg_1", "msg_2"] == [r["webhook-id"] for r in receiver.records()]


@pytest.mark.parametrize(("status", "retry_after"), [("503", "7"), ("429", "7"), ("410", None)])
def test_failing_on_purpose(start: Start, status: str, retry_after: str | None) -> None:
    receiver = start("--fail-first", "2", "--fail-status", status, "--retry-after", "7")
    # A forgery neither counts as one of the two nor is recorded.
    assert 401 == post(receiver.url, "msg_1", keys=[OTHER]).status_code
    answers = [post(receiver.url, "msg_1") for _ in range(3)]
    assert [
        (int(status), retry_after),
        (int(status), retry_after),
        (200, None),
    ] == [(a.status_code, a.headers.get("retry-after")) for a in answers]
    assert ["msg_1"] == [r["webhook-id"] for r in receiver.records()]


def test_one_receiver_per_out_file(start: Start, tmp_path: Path) -> None:
    receiver = start()
    second = run("receiver", "--port", "0", "--secret", KEY.secret, "--out", str(receiver.out))
    assert (2, f"trustwatch: error: --out: another receiver is writing to {receiver.out}; ") == (
        second.returncode,
        second.stderr[: second.stderr.index("one receiver")],
    )
    assert 0 == receiver.stop()
    assert 200 == post(start().url, "msg_1").status_code


def test_a_torn_last_line_is_cut_off_at_start(start: Start, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    good = b'{"webhook-id":"msg_1","received_at":"2026-01-02T00:00:00.000000Z","payload":{}}\n'
    out.write_bytes(good + b'{"webhook-id":"msg_2","rec')
    receiver = start(out=out)
    assert "cutting off a line left incomplete by a crash" in receiver.log()
    assert good == out.read_bytes()
    assert "duplicate" == post(receiver.url, "msg_1").json()["status"]
    assert "recorded" == post(receiver.url, "msg_2").json()["status"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRUSTWATCH, *args], capture_output=True, text=True, timeout=60, env=_env(env), check=False
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("--port", "0"),
            {},
            "trustwatch: error: no secret: pass --secret-file FILE, "
            "set TRUSTWATCH_RECEIVER_SECRET, or --secret\n",
        ),
        (
            ("--port", "0"),
            {"TRUSTWATCH_RECEIVER_SECRET": "whsec_!!"},
            "trustwatch: error: the signing secret is not whsec_ followed by base64\n",
        ),
        (
            ("--port", "0", "--secret-file", "/nonexistent"),
            {},
            "trustwatch: error: --secret-file: cannot read /nonexistent: "
            "No such file or directory\n",
        ),
        (("--port", "99999", "--secret", KEY.secret), {}, "argument --port: '99999' is not a port"),
        (("--port", "http", "--secret", KEY.secret), {}, "argument --port: 'http' is not a port"),
        (("--port", "0", "--secret", KEY.secret, "--tolerance", "-5"), {}, "--tolerance: '-5'"),
        (
            ("--port", "0", "--secret", KEY.secret, "--fail-status", "500"),
            {},
            "argument --fail-status: invalid choice: 500",
        ),
        (
            ("--port", "0", "--secret", "a", "--secret-file", "f"),
            {},
            "argument --secret-file: not allowed with argument --secret",
        ),
    ],
)
def test_mistakes_are_clear_messages(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run("receiver", "--out", str(tmp_path / "alerts.jsonl"), *args, env=env)
    assert (2, True, False) == (
        result.returncode,
        message in result.stderr,
        "Traceback" in result.stderr,
    ), result.stderr
    assert [] == list(tmp_path.iterdir())  # nothing created


def test_file_and_port_mistakes_are_clear_messages(tmp_path: Path) -> None:
    secret = ("--secret", KEY.secret)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = str(holder.getsockname()[1])
        in_use = run("receiver", "--port", busy, *secret, "--out", str(tmp_path / "a.jsonl"))
    directory = run("receiver", "--port", "0", *secret, "--out", str(tmp_path))
    missing = run("receiver", "--port", "0", *secret, "--out", str(tmp_path / "no" / "a.jsonl"))
    bad_host = run(
        "receiver",
        "--port",
        "0",
        "--host",
        "no.such.host.invalid",
        *secret,
        "--out",
        str(tmp_path / "b.jsonl"),
    )
    assert [
        f"trustwatch: error: cannot listen on 127.0.0.1:{busy}: Address already in use\n",
        f"trustwatch: error: --out: {tmp_path} is a directory; name a file\n",
        f"trustwatch: error: --out: cannot open {tmp_path / 'no' / 'a.jsonl'}: "
        "No such file or directory\n",
    ] == [in_use.stderr, directory.stderr, missing.stderr]
    assert "trustwatch: error: cannot listen on no.such.host.invalid:0: " in bad_host.stderr
    assert [2, 2, 2, 2] == [r.returncode for r in (in_use, directory, missing, bad_host)]
    assert [] == [p for p in tmp_path.iterdir() if p.is_file()]  # no out file made on the way


def test_a_corrupt_out_file_stops_the_start_with_its_line(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    out.write_bytes(b'{"webhook-id":"msg_1","payload":{}}\n\nnot a record\n')
    result = run("receiver", "--port", "0", "--secret", KEY.secret, "--out", str(out))
    assert (
        2,
        f"trustwatch: error: {out}:3: not a delivery record (a JSON object with a "
        "'webhook-id'); give another --out or move the file\n",
    ) == (result.returncode, result.stderr)
