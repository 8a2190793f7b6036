"""``trustwatch sensor scan HOST``: a one-off posture scan of a site, printed by area with the
two compatibility sub-grades (``--json`` for the whole report), and shipped to the service
as a scan record with ``--api``."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import sys
from pathlib import Path

import orjson

from sensors.cliopts import check_api_url, checked_sensor_id, seconds, token_from
from sensors.errors import SensorError
from sensors.scanner.policy import ScanPolicy, parse_network
from sensors.scanner.result import Area, ScanReport
from sensors.shipper import Shipper, ShipperConfig

EXIT_SHIP_FAILED = 1


def add_scan_command(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = kinds.add_parser(
        "scan",
        help="scan a site's public posture: TLS, HTTP, DNS, exposure, availability, disclosure",
        description="Scan one host: TLS and certificates on every address (at most 8), HTTP "
        "security headers and redirects, DNS and e-mail records, exposed services and files, "
        "availability and page integrity, security.txt and the privacy policy. Private, "
        "loopback and link-local addresses are refused unless --allow-network names them.",
    )
    scan.add_argument("host", metavar="HOST", help="host name (or IP address) to scan")
    scan.add_argument("--json", action="store_true", help="print the whole report as JSON")
    scan.add_argument(
        "--only",
        metavar="AREAS",
        help=f"comma-separated areas to run (default all: {','.join(a.value for a in Area)})",
    )
    scan.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="also scan addresses in this non-public network (repeatable), e.g. 10.0.0.0/8",
    )
    scan.add_argument("--https-port", type=int, default=443, help="port of the HTTPS site (443)")
    scan.add_argument("--http-port", type=int, default=80, help="port of the HTTP site (80)")
    scan.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="resolver to use instead of the system's (repeatable)",
    )
    scan.add_argument(
        "--trust-ca", type=Path, metavar="FILE", help="extra CA certificates sites may chain to"
    )
    scan.add_argument(
        "--timeout", type=seconds, default=10.0, help="seconds to wait for any one read (10)"
    )
    scan.add_argument(
        "--budget", type=seconds, default=180.0, help="most seconds for the whole host (180)"
    )
    scan.add_argument(
        "--concurrency", type=int, default=8, help="connections open at once (1-256, 8)"
    )
    scan.add_argument(
        "--port-rate",
        type=seconds,
        default=20.0,
        help="connection attempts per second of the port scan (20)",
    )
    scan.add_argument("--api", metavar="URL", help="also ship the result to this service")
    scan.add_argument("--token", help="sensor token (prefer --token-file or TRUSTWATCH_TOKEN)")
    scan.add_argument("--token-file", type=Path, help="file holding the sensor token")
    scan.add_argument(
        "--sensor-id",
        default=os.environ.get("TRUSTWATCH_SENSOR_ID") or socket.gethostname(),
        help="this sensor's id, as bound to its token (default: $TRUSTWATCH_SENSOR_ID, else "
        "the host name)",
    )
    scan.add_argument("--ca", type=Path, help="CA bundle to verify the service's certificate")
    scan.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="allow an http:// service beyond loopback (the token would cross in clear)",
    )
    scan.set_defaults(handler=run_scan)


def policy_from(args: argparse.Namespace) -> ScanPolicy:
    """The scan policy the options ask for; a bad value is a :class:`SensorError`."""
    if args.trust_ca is not None and not args.trust_ca.is_file():
        raise SensorError(f"--trust-ca: {args.trust_ca} is not a file")
    try:
        networks = tuple(parse_network(text) for text in args.allow_network)
        return ScanPolicy(
            allowed_networks=networks,
            https_port=args.https_port,
            http_port=args.http_port,
            nameservers=tuple(args.nameserver),
            ca_file=args.trust_ca,
            read_timeout=args.timeout or 10.0,
            connect_timeout=min(5.0, args.timeout or 5.0),
            host_budget=args.budget or 180.0,
            concurrency=args.concurrency,
            port_rate=args.port_rate or 20.0,
        )
    except ValueError as exc:
        raise SensorError(str(exc)) from exc


def _areas(only: str | None) -> tuple[Area, ...]:
    if not only:
        return tuple(Area)
    names = [name.strip().lower() for name in only.split(",") if name.strip()]
    known = {a.value: a for a in Area}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SensorError(
            f"--only: unknown area {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return tuple(known[n] for n in names)


def run_scan(args: argparse.Namespace) -> int:
    # The checks' libraries (sslyze, dnspython) load only when a scan runs.
    from sensors.scanner.registry import AREAS
    from sensors.scanner.render import render_text
    from sensors.scanner.runner import scan_host

    policy = policy_from(args)
    wanted = _areas(args.only)
    shipper_config = None
    if args.api:
        check_api_url(args.api, allow_plaintext=args.allow_plaintext)
        if args.ca is not None and not args.ca.is_file():
            raise SensorError(f"--ca: {args.ca} is not a file")
        shipper_config = ShipperConfig(
            api_url=args.api,
            token=token_from(args),
            sensor_id=checked_sensor_id(args.sensor_id),
            ca_file=args.ca,
        )
    areas = tuple(spec for spec in AREAS if spec.area in wanted)
    # The system's resolver configuration is read here, where a broken one is a clear error.
    try:
        report = asyncio.run(scan_host(args.host, policy, areas=areas))
    except OSError as exc:
        raise SensorError(f"cannot scan {args.host}: {exc}") from exc
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    sys.stdout.flush()
    if shipper_config is None:
        return 0
    return _ship(report, shipper_config)


def scan_event_id(sensor_id: str, report: ScanReport) -> str:
    """A stable id for one scan: sending it twice stores it once."""
    seed = f"{sensor_id}|{report.host}|{report.started.isoformat()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def _ship(report: ScanReport, config: ShipperConfig) -> int:
    record = report.to_record(scan_event_id(config.sensor_id, report))
    with Shipper(config) as shipper:
        reply = shipper.send([record])
    if reply.rejected:
        sys.stderr.write(f"the service refused the scan record: {reply.rejected[0].error}\n")
        return EXIT_SHIP_FAILED
    sys.stderr.write(
        f"shipped to {config.api_url}: "
        f"{'stored' if reply.accepted else 'already stored (duplicate)'}\n"
    )
    return 0
