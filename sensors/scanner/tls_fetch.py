"""Fetching the TLS area's snapshot: sslyze against every address of the host, the chain as
served verified by our own code (see :mod:`sensors.scanner.tls` for why), and HSTS from the
shared home-page fetch."""

from __future__ import annotations

import asyncio
import hashlib
import math
import warnings
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)
from sslyze.plugins.openssl_cipher_suites.implementation import CipherSuitesScanResult
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import ScanCommandsExtraArguments, ServerScanRequest, ServerScanResult
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from sensors.scanner.context import ScanContext
from sensors.scanner.policy import IPAddress, ScanPolicy
from sensors.scanner.tls import (
    _MAX_CONNECTIONS,
    _MAX_LIST,
    _PROTOCOL_COMMANDS,
    _WARNINGS_LOCK,
    Certificate,
    CipherSuite,
    Endpoint,
    Protocol,
    TlsSnapshot,
    _ec_equivalent,
    _text,
)

_T = TypeVar("_T")


async def fetch_tls(ctx: ScanContext) -> TlsSnapshot:
    """Scan every address of ``ctx.target`` with sslyze, a few connections each, holding that
    many of ``ctx.slots`` meanwhile; read HSTS from the shared home-page fetch beside it."""
    observed_at = ctx.now()
    hsts_task = asyncio.ensure_future(_hsts(ctx))
    anchors = await asyncio.to_thread(_trust_anchors, ctx.policy.ca_file)
    connections = min(_MAX_CONNECTIONS, ctx.policy.concurrency)
    # Several slots are taken one at a time; the lock stops two endpoints from each holding
    # part of what they need and waiting on the other for ever.
    gate = asyncio.Lock()

    async def scan(address: IPAddress) -> Endpoint:
        held = 0
        try:
            async with gate:
                while held < connections:
                    await ctx.slots.acquire()
                    held += 1
            return await asyncio.to_thread(
                _scan_endpoint,
                ctx.target.host,
                address,
                ctx.policy,
                connections,
                anchors,
                observed_at,
            )
        finally:
            for _ in range(held):
                ctx.slots.release()

    endpoints = await asyncio.gather(*(scan(a) for a in ctx.target.addresses))
    hsts, hsts_error = await hsts_task
    return TlsSnapshot(
        ctx.target.host, ctx.policy.https_port, observed_at, tuple(endpoints), hsts, hsts_error
    )


async def _hsts(ctx: ScanContext) -> tuple[str | None, str | None]:
    try:
        page = await ctx.page(ctx.url("https"))
    except httpx.HTTPError as exc:
        return None, _text(f"{type(exc).__name__}: {exc}")
    return page.header("strict-transport-security"), None


def _quietly(load: Callable[[], _T]) -> _T:
    """Run ``load`` without warnings: the root stores hold a few old roots with negative serial
    numbers, about which cryptography warns on every parse."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load()


_Anchors = tuple[tuple[str, verification.Store, frozenset[bytes]], ...]


def _trust_anchors(ca_file: Path | None) -> _Anchors:
    """Mozilla's roots as sslyze ships them, and ``ca_file``: (name, store, subjects)."""
    # sslyze parses its stores once per process, lazily, from its scan threads; done here
    # first so that the parse happens once and quietly.
    mozilla = _quietly(lambda: TrustStoresRepository.get_default().get_main_store().path)
    out = []
    for name, path in (("Mozilla", mozilla), ("ca_file", ca_file)):
        if path is not None:
            roots = _quietly(partial(x509.load_pem_x509_certificates, path.read_bytes()))
            subjects = frozenset(r.subject.public_bytes() for r in roots)
            out.append((name, verification.Store(roots), subjects))
    return tuple(out)


def _scan_endpoint(
    host: str,
    address: IPAddress,
    policy: ScanPolicy,
    connections: int,
    anchors: _Anchors,
    at: datetime,
) -> Endpoint:
    commands = {c for _, c in _PROTOCOL_COMMANDS}
    commands |= {ScanCommand.CERTIFICATE_INFO, ScanCommand.HEARTBLEED, ScanCommand.ROBOT}
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(policy.ca_file) if policy.ca_file else None
    )
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(host, policy.https_port, str(address)),
        # One timeout covers connecting and reading in sslyze: the longer of the policy's.
        network_configuration=ServerNetworkConfiguration(
            host,
            network_timeout=math.ceil(max(policy.connect_timeout, policy.read_timeout)),
            network_max_retries=1,
        ),
        scan_commands=commands,
        scan_commands_extra_arguments=extra,
    )
    scanner = Scanner(
        per_server_concurrent_connections_limit=connections, concurrent_server_scans_limit=1
    )
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    if result.scan_result is None:
        trace = result.connectivity_error_trace
        reason = "".join(trace.format_exception_only()).strip() if trace else "no connection"
        return Endpoint(str(address), error=_text(reason))
    return _endpoint(str(address), result, anchors, at)


def _failure(attempt: Any) -> str | None:
    if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
        return None
    trace = attempt.error_trace
    detail = "".join(trace.format_exception_only()).strip() if trace else ""
    return _text(f"{attempt.error_reason.value if attempt.error_reason else 'error'} {detail}")


def _endpoint(address: str, found: ServerScanResult, anchors: _Anchors, at: datetime) -> Endpoint:
    scan = found.scan_result
    assert scan is not None  # noqa: S101 - _scan_endpoint returned early otherwise
    errors: list[tuple[str, str]] = []
    protocols: list[Protocol] = []
    suites: list[CipherSuite] = []
    for protocol, command in _PROTOCOL_COMMANDS:
        attempt = getattr(scan, command.value)
        if (problem := _failure(attempt)) is not None:
            errors.append((protocol.value, problem))
        elif isinstance(attempt.result, CipherSuitesScanResult):
            accepted = attempt.result.accepted_cipher_suites
            protocols.extend([protocol] if accepted else [])
            suites.extend(_suite(protocol, a) for a in accepted)
    fields: dict[str, Any] = {}
    if (problem := _failure(scan.certificate_info)) is not None:
        errors.append(("certificate", problem))
    elif scan.certificate_info.result and scan.certificate_info.result.certificate_deployments:
        deployment = scan.certificate_info.result.certificate_deployments[0]
        served = deployment.received_certificate_chain
        ocsp = deployment.ocsp_response
        fields = {
            "chain": tuple(_certificate(c) for c in served),
            "trust": tuple((name, _verify(served, store, at)) for name, store, _ in anchors),
            "ocsp_stapled": ocsp is not None,
            "ocsp_status": None if ocsp is None else ocsp.response_status.name.lower(),
            "must_staple": deployment.leaf_certificate_has_must_staple_extension,
        }
        last = served[-1]
        fields["chain_complete"] = (
            any(problem is None for _, problem in fields["trust"])
            or last.issuer == last.subject
            or any(last.issuer.public_bytes() in subjects for *_, subjects in anchors)
        )
    if (problem := _failure(scan.heartbleed)) is not None:
        errors.append(("heartbleed", problem))
    elif scan.heartbleed.result is not None:
        fields["heartbleed"] = scan.heartbleed.result.is_vulnerable_to_heartbleed
    if (problem := _failure(scan.robot)) is not None:
        errors.append(("robot", problem))
    elif scan.robot.result is not None:
        fields["robot"] = scan.robot.result.robot_result.value
    return Endpoint(
        address,
        protocols=tuple(protocols),
        suites=tuple(suites),
        scan_errors=tuple(errors),
        **fields,
    )


def _suite(protocol: Protocol, accepted: Any) -> CipherSuite:
    name: str = accepted.cipher_suite.name
    key = accepted.ephemeral_key
    modern = protocol is Protocol.TLS13
    kx_bits = None
    if key is not None:
        kx_bits = key.size if key.type_name == "DH" else _ec_equivalent(key.size)
    return CipherSuite(
        name=name,
        protocol=protocol,
        bits=accepted.cipher_suite.key_size,
        forward_secret=modern or "DHE_" in name,
        aead=modern or any(m in name for m in ("_GCM", "_CCM", "CHACHA20_POLY1305")),
        anonymous=accepted.cipher_suite.is_anonymous,
        kx=None if key is None else f"{key.type_name} {key.size}",
        kx_bits=kx_bits,
    )


def _certificate(cert: x509.Certificate) -> Certificate:
    key = cert.public_key()
    kind, bits = "other", 0
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        kind, bits = ("RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"), key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind, bits = "EC", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        kind = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
        bits = 256 if kind == "Ed25519" else 448
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(names.get_values_for_type(x509.DNSName))
        ips = tuple(str(a) for a in names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns_names, ips = (), ()
    hash_algorithm = cert.signature_hash_algorithm
    return Certificate(
        subject=_text(cert.subject.rfc4514_string()),
        issuer=_text(cert.issuer.rfc4514_string()),
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=kind,
        key_bits=bits,
        signature_hash=None if hash_algorithm is None else hash_algorithm.name,
        self_signed=cert.issuer == cert.subject,
        dns_names=dns_names[:_MAX_LIST],
        ip_addresses=ips[:_MAX_LIST],
    )


def _ee_usage(_policy: Any, _cert: Any, usage: x509.ExtendedKeyUsage | None) -> None:
    if usage is not None and x509.oid.ExtendedKeyUsageOID.SERVER_AUTH not in usage:
        raise ValueError("the certificate's extended key usage does not include serverAuth")


def _verify(served: list[x509.Certificate], store: verification.Store, at: datetime) -> str | None:
    """Why the served chain does not lead to a root of ``store`` at ``at``; None if it does."""
    leaf_policy = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _ee_usage)
    )
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy
        )
        .build_client_verifier()  # a client verifier checks the path without a server name
    )
    try:
        verifier.verify(served[0], served[1:])
    except (verification.VerificationError, ValueError) as exc:
        return _text(str(exc))
    return None
