"""``trustwatch sensor ...``: the commands a sensor host runs.

Registered into the main command by :mod:`api.cli`; needs only the ``sensor`` extra.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson

from sensors.cliopts import check_api_url, checked_sensor_id, seconds, token_from
from sensors.errors import CaptureError, SensorError, ShipError
from sensors.flows import MeterConfig
from sensors.netsensor import NetJob, default_spool_dir, to_file, to_service
from sensors.scancmd import add_scan_command
from sensors.shipper import ShipperConfig

EXIT_SHIP_FAILED = 1
EXIT_BAD_INPUT = 2

log = logging.getLogger("trustwatch.sensor")


def sensor_version() -> str:
    try:
        return version("trustwatch")
    except PackageNotFoundError:
        return "0+unknown"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sensor = commands.add_parser("sensor", help="run a sensor on an agency host")
    kinds = sensor.add_subparsers(dest="sensor_command", required=True, metavar="KIND")
    net = kinds.add_parser(
        "net",
        help="turn traffic into flow records and ship them",
        description="Capture traffic (a file, or an interface until SIGTERM), meter it into "
        "bidirectional flow records and ship them to the service through a disk spool (--api) "
        "or write them as JSON lines (--out).",
    )
    source = net.add_mutually_exclusive_group(required=True)
    source.add_argument("--pcap", type=Path, help="pcap or pcapng file to read")
    source.add_argument("--interface", metavar="IF", help="capture live on IF (CAP_NET_RAW)")
    net.add_argument("--bpf", metavar="FILTER", help="BPF filter for live capture")
    dest = net.add_mutually_exclusive_group(required=True)
    dest.add_argument("--api", metavar="URL", help="service base URL, e.g. https://tw.example:8443")
    dest.add_argument("--out", type=Path, metavar="FILE", help="write flow records here (JSONL)")
    net.add_argument(
        "--token",
        help="sensor token (prefer --token-file or TRUSTWATCH_TOKEN: arguments show in `ps`)",
    )
    net.add_argument("--token-file", type=Path, help="file holding the sensor token")
    net.add_argument(
        "--sensor-id",
        default=os.environ.get("TRUSTWATCH_SENSOR_ID") or socket.gethostname(),
        help="this sensor's id, as bound to its token (default: $TRUSTWATCH_SENSOR_ID, else "
        "the host name)",
    )
    net.add_argument("--ca", type=Path, help="CA bundle to verify the service's certificate")
    net.add_argument("--batch-size", type=int, default=1000, help="records per batch (1-10000)")
    net.add_argument(
        "--batch-wait",
        type=seconds,
        default=1.0,
        help="most seconds from a flow's last packet until its record is sent (1)",
    )
    net.add_argument(
        "--spool",
        type=Path,
        metavar="DIR",
        help="where batches wait until acknowledged (default: "
        "$XDG_STATE_HOME/trustwatch/spool-<sensor id>)",
    )
    net.add_argument(
        "--spool-max-bytes",
        type=int,
        default=256 * 1024 * 1024,
        help="spool bound; the oldest batches go first (256 MiB)",
    )
    net.add_argument("--idle-timeout", type=seconds, default=120.0, help="seconds (default 120)")
    net.add_argument(
        "--active-timeout", type=seconds, default=1800.0, help="seconds (default 1800)"
    )
    net.add_argument("--max-flows", type=int, default=262_144, help="flow table bound")
    net.add_argument(
        "--allow-truncated",
        action="store_true",
        help="process the complete packets of a truncated capture instead of refusing it",
    )
    net.add_argument(
        "--retry-budget", type=seconds, default=60.0, help="seconds to keep retrying (60)"
    )
    net.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="allow an http:// service beyond loopback (the token would cross the network "
        "in clear: only inside a protected segment)",
    )
    net.set_defaults(handler=run_net)
    add_scan_command(kinds)


def run_net(args: argparse.Namespace) -> int:
    sensor_id = checked_sensor_id(args.sensor_id)
    if not 1 <= args.batch_size <= 10_000:
        raise SensorError("--batch-size must be between 1 and 10000")
    try:
        meter_config = MeterConfig(
            idle_timeout=args.idle_timeout,
            active_timeout=args.active_timeout,
            max_flows=args.max_flows,
        )
    except ValueError as exc:
        raise SensorError(str(exc)) from exc

    if args.bpf and args.interface is None:
        raise SensorError("--bpf applies to live capture (--interface)")
    job = NetJob(
        sensor_id=sensor_id,
        pcap=args.pcap,
        interface=args.interface,
        bpf=args.bpf,
        meter=meter_config,
        batch_size=args.batch_size,
        batch_wait=args.batch_wait,
        allow_truncated=args.allow_truncated,
    )
    delivered = True
    if args.out is not None:
        if not args.out.parent.is_dir():
            raise SensorError(f"--out: directory {args.out.parent} does not exist")
        if args.out.is_dir():
            raise SensorError(f"--out: {args.out} is a directory; name a file")
        summary = to_file(job, args.out)
    else:
        check_api_url(args.api, allow_plaintext=args.allow_plaintext)
        token = token_from(args)
        if args.ca is not None and not args.ca.is_file():
            raise SensorError(f"--ca: {args.ca} is not a file")
        config = ShipperConfig(
            api_url=args.api,
            token=token,
            sensor_id=sensor_id,
            ca_file=args.ca,
            retry_budget=args.retry_budget,
        )
        spool_dir = args.spool or default_spool_dir(sensor_id)
        summary, delivered = to_service(
            job, config, spool_dir, args.spool_max_bytes, sensor_version()
        )
    sys.stdout.write(orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_SHIP_FAILED if summary.rejected or not delivered else 0


def exit_code(exc: SensorError) -> int:
    """The process exit code for a sensor error: bad input 2, delivery failure 1."""
    if isinstance(exc, ShipError):
        return EXIT_SHIP_FAILED
    if isinstance(exc, CaptureError):
        return EXIT_BAD_INPUT
    return EXIT_BAD_INPUT
