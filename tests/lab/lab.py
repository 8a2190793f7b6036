"""The traffic lab: real tools between network namespaces of its own, captured with tcpdump.

    python tests/lab/lab.py capture --out DIR [--activities browse,dns,...] [--split] [sizes]
    python tests/lab/lab.py teardown [--all]

``capture`` builds the lab (see ``netns.py``: a switch namespace with a bridge, a server, a
client and an attacker namespace; 10.203.0.0/24 and fd77:203::/64; no default route
anywhere, no link to the namespace it was started from), runs the activities one after the
other with a quiet gap between them while tcpdump records the bridge, and writes
``DIR/lab.pcap`` with ``DIR/labels.json`` (see ``labels.py``). With ``--split`` each activity
gets a capture of its own: ``DIR/<activity>.pcap`` and ``DIR/<activity>.labels.json``. An
activity that cannot run here (a tool or /dev/net/tun missing) is skipped and the label file
says why. Whatever happens, the lab's processes and namespaces are removed at the end, also
on Ctrl-C or SIGTERM.

``teardown`` removes what crashed runs left behind: namespaces ``twlab-<pid>-*`` and
temporary directories ``$TMPDIR/twlab-<pid>-*`` whose pid is gone (with ``--all`` also those
of runs still in progress).

Needs root (namespaces, raw sockets). ``tests/lab/install.sh`` installs the tools.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from activities import Context, Sizes, Skip, browse, dns
from attacks import beacon, bruteforce, dns_tunnel, nmap_connect, nmap_syn
from labels import Label, Skipped, tool_versions, write_labels
from netns import PREFIX, Lab, LabError, teardown_leftovers
from tcpdump import Capture

log = logging.getLogger("lab")

# In the order a full run does them.
ACTIVITIES: dict[str, Callable[[Context], Label]] = {
    "browse": browse,
    "dns": dns,
    "nmap_syn": nmap_syn,
    "nmap_connect": nmap_connect,
    "bruteforce": bruteforce,
    "dns_tunnel": dns_tunnel,
    "beacon": beacon,
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lab.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    commands = parser.add_subparsers(dest="command", required=True)
    capture = commands.add_parser("capture", help="run activities and capture them")
    capture.add_argument("--out", type=Path, required=True, help="directory for the files")
    capture.add_argument(
        "--activities",
        default=",".join(ACTIVITIES),
        help=f"comma-separated, run in this order (default: all: {','.join(ACTIVITIES)})",
    )
    capture.add_argument("--split", action="store_true", help="one capture per activity")
    capture.add_argument("--gap", type=float, default=1.0, help="quiet seconds between them")
    defaults = Sizes()
    capture.add_argument("--pages", type=int, default=defaults.pages)
    capture.add_argument("--pages6", type=int, default=defaults.pages6)
    capture.add_argument("--lookups", type=int, default=defaults.lookups)
    capture.add_argument("--ports", default=defaults.ports, help="nmap's -p (e.g. 1-200)")
    capture.add_argument("--passwords", type=int, default=defaults.passwords)
    capture.add_argument("--tunnel-seconds", type=float, default=defaults.tunnel_seconds)
    capture.add_argument("--beacons", type=int, default=defaults.beacons)
    capture.add_argument("--beacon-interval", type=float, default=defaults.beacon_interval)
    teardown = commands.add_parser("teardown", help="remove what crashed runs left behind")
    teardown.add_argument("--all", action="store_true", help="also runs still in progress")
    args = parser.parse_args(argv)
    if args.command == "capture":
        unknown = set(args.activities.split(",")) - set(ACTIVITIES)
        if unknown:
            parser.error(f"unknown activities {sorted(unknown)}; known: {list(ACTIVITIES)}")
        if args.passwords < 1:
            parser.error("--passwords must be at least 1 (the right one is always in the list)")
    return args


def _run_activity(name: str, ctx: Context) -> Label | Skipped:
    log.info("activity %s", name)
    try:
        label = ACTIVITIES[name](ctx)
    except Skip as skip:
        log.warning("skipped %s: %s", name, skip)
        return Skipped(name, str(skip))
    log.info("%s: %.1f s, expected %s", name, (label.end - label.start) / 1e9, label.expected)
    return label


def _capture(args: argparse.Namespace) -> dict[str, object]:
    names = args.activities.split(",")
    sizes = Sizes(
        pages=args.pages,
        pages6=args.pages6,
        lookups=args.lookups,
        ports=args.ports,
        passwords=args.passwords,
        tunnel_seconds=args.tunnel_seconds,
        beacons=args.beacons,
        beacon_interval=args.beacon_interval,
    )
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    versions = tool_versions()
    lab = Lab()
    atexit.register(lab.down)
    written: list[str] = []
    results: list[Label | Skipped] = []
    try:
        lab.up()
        with tempfile.TemporaryDirectory(prefix=f"{lab.tag}-") as tmp:
            work = Path(tmp)
            ctx = Context(lab=lab, work=work, sizes=sizes, versions=versions)
            groups = [[name] for name in names] if args.split else [names]
            for i, group in enumerate(groups):
                stem = group[0] if args.split else "lab"
                labels_name = f"{stem}.labels.json" if args.split else "labels.json"
                partial = out / f".{stem}.pcap.partial"
                done: list[Label | Skipped] = []
                with Capture(lab, partial) as capture:
                    for j, name in enumerate(group):
                        if i + j:
                            time.sleep(args.gap)
                        done.append(_run_activity(name, ctx))
                results.extend(done)
                labels = [d for d in done if isinstance(d, Label)]
                skipped = [d for d in done if isinstance(d, Skipped)]
                if not labels:  # nothing ran: keep whatever capture was there before
                    partial.unlink()
                    continue
                partial.replace(out / f"{stem}.pcap")
                write_labels(
                    out / labels_name,
                    capture=f"{stem}.pcap",
                    labels=labels,
                    skipped=skipped,
                    tools=versions,
                    capture_stats=capture.stats,
                )
                written += [f"{stem}.pcap", labels_name]
    finally:
        lab.down()
        for leftover in out.glob(".*.partial"):
            leftover.unlink()
    return {
        "out": str(out),
        "files": written,
        "activities": [r.activity for r in results if isinstance(r, Label)],
        "skipped": {r.activity: r.reason for r in results if isinstance(r, Skipped)},
    }


def _remove_work_directories(*, everything: bool) -> list[str]:
    """Remove the temporary directories of lab runs that were killed before they could."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and (everything or not Path(f"/proc/{pid}").exists()):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds through the finally blocks: the lab is taken down as on Ctrl-C.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="lab: %(message)s",
        stream=sys.stderr,
    )
    if os.geteuid() != 0:
        log.error("the lab needs root: network namespaces, veth pairs, raw sockets")
        return 2
    missing = [
        tool for tool in ("ip", "tcpdump", "ss", "sysctl", "ethtool") if shutil.which(tool) is None
    ]
    if missing and args.command == "capture":
        log.error("missing %s: run tests/lab/install.sh", " ".join(missing))
        return 2
    if args.command == "teardown":
        deleted = teardown_leftovers(everything=args.all)
        removed = _remove_work_directories(everything=args.all)
        sys.stdout.write(json.dumps({"deleted": deleted, "removed": removed}) + "\n")
        return 0
    # Ctrl-C raises KeyboardInterrupt even when the lab was started with SIGINT ignored (as a
    # background job of a script is): it must always be able to stop and clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    try:
        summary = _capture(args)
    except LabError as exc:
        failure = str(exc)  # a lab failure is told in a line; a traceback would bury it
    else:
        failure = ""
    if failure:
        log.error("%s", failure)
        return 1
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
