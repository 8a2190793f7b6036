"""The ``trustwatch`` command. Each sub-command imports what it needs when it runs, so that a
sensor host (``trustwatch[sensor]``) runs ``trustwatch sensor ...`` without the server's
dependencies."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.logs import OWN_LOGGERS
from sensors import cli as sensor_cli
from sensors.errors import SensorError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Which extra brings a module, to name it when a command runs on a host without it.
_EXTRA_OF = {
    "scapy": "sensor",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "pydantic_settings": "server",
    "prometheus_client": "server",
    "pythonjsonlogger": "server",
    "sigma": "server",
    "yaml": "server",
    "pandas": "server",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own messages at INFO; libraries (httpx logs every request, for one)
    # only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        code: int = args.handler(args)
    except SensorError as exc:
        return _fail(str(exc), sensor_cli.exit_code(exc))
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        return _fail(
            f"{exc.name} is not installed; this command needs pip install 'trustwatch[{extra}]'",
            EXIT_USAGE,
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from api.errors import TrustWatchError

        if isinstance(exc, TrustWatchError):
            return _fail(str(exc), EXIT_USAGE)
        raise
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trustwatch",
        description="Cyber-incident early warning and digital-trust ratings.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument("--data-dir", type=Path, help="data directory (TRUSTWATCH_DATA_DIR)")

    serve = commands.add_parser("serve", help="run the central service", parents=[data_dir])
    serve.add_argument("--host", help="listen address (TRUSTWATCH_HOST)")
    serve.add_argument("--port", type=int, help="listen port (TRUSTWATCH_PORT)")
    serve.set_defaults(handler=_serve)

    token = commands.add_parser("token", help="manage access tokens in the local store")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create a token and print it once", parents=[data_dir]
    )
    create.add_argument("--role", required=True, choices=["sensor", "analyst", "admin"])
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.add_argument("--sensor-id", help="for --role sensor: its sensor id (default: --name)")
    create.set_defaults(handler=_token_create)
    listing = actions.add_parser(
        "list", help="list tokens (never their secrets)", parents=[data_dir]
    )
    listing.set_defaults(handler=_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token by id", parents=[data_dir])
    revoke.add_argument("id", type=_row_id)
    revoke.set_defaults(handler=_token_revoke)

    rules = commands.add_parser("rules", help="work with detection rules")
    rule_actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rule_actions.add_parser(
        "check", help="load rule files and list every problem with file and line"
    )
    check.add_argument("paths", nargs="+", type=Path, help="rule files or directories")
    check.set_defaults(handler=_rules_check)
    export = rule_actions.add_parser(
        "export", help="convert rules to Elasticsearch queries or Kibana detection rules"
    )
    export.add_argument("--backend", required=True, choices=["elasticsearch"])
    export.add_argument(
        "--format",
        choices=["esql", "lucene", "ndjson"],
        default="esql",
        help="ES|QL queries (default), Lucene query strings, or Kibana rules to import",
    )
    export.add_argument(
        "--index",
        metavar="PATTERN",
        help="index pattern(s), comma-separated (default: "
        "logs-trustwatch.flow-*, the data stream the Elasticsearch store writes)",
    )
    export.add_argument("paths", nargs="+", type=Path, help="rule files or directories")
    export.set_defaults(handler=_rules_export)
    sigmahq = rule_actions.add_parser(
        "import-sigmahq",
        help="copy the SigmaHQ rules that run on flows from a SigmaHQ/sigma git checkout",
    )
    sigmahq.add_argument("checkout", type=Path, help="a SigmaHQ/sigma git checkout")
    sigmahq.add_argument(
        "--out", type=Path, help="where to put them (default: the service's rules/community/)"
    )
    sigmahq.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    sigmahq.set_defaults(handler=_rules_import_sigmahq)

    _add_receiver(commands)
    _add_demo(commands)
    _add_report(commands, data_dir)
    sensor_cli.add_commands(commands)
    return parser


def _add_receiver(commands: Any) -> None:
    receiver = commands.add_parser(
        "receiver",
        help="run the reference webhook receiver: verify, dedupe and record deliveries",
        description="Accept POSTs signed in the Standard Webhooks form, refuse bad signatures "
        "and stale timestamps, and append each new webhook-id as one JSON line to --out "
        "(fsync'd before the 200). The secret comes from --secret-file, --secret (visible "
        "to other users in ps), or TRUSTWATCH_RECEIVER_SECRET; several separated by spaces "
        "(one per line in a file) while rotating.",
    )
    receiver.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    receiver.add_argument(
        "--port", required=True, type=_port, help="listen port (0: any free one, logged)"
    )
    secrets = receiver.add_mutually_exclusive_group()
    secrets.add_argument(
        "--secret",
        action="append",
        metavar="WHSEC",
        help="a whsec_<base64> secret; repeat to rotate (visible in ps: prefer the others)",
    )
    secrets.add_argument(
        "--secret-file", type=Path, metavar="FILE", help="a file of whsec_ secrets, one per line"
    )
    receiver.add_argument(
        "--out", required=True, type=Path, help="the JSON-lines file deliveries are appended to"
    )
    receiver.add_argument(
        "--tolerance",
        type=_positive_int,
        default=300,
        metavar="SECONDS",
        help="how far a webhook-timestamp may be from now, either way (300)",
    )
    receiver.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=1024 * 1024,
        metavar="BYTES",
        help="larger bodies are answered 413 (1 MiB)",
    )
    receiver.add_argument(
        "--fail-first",
        type=_count,
        default=0,
        metavar="N",
        help="for testing retries: answer the first N authentic deliveries with "
        "--fail-status and record nothing (0)",
    )
    receiver.add_argument(
        "--fail-status",
        type=int,
        choices=[503, 429, 410],
        default=503,
        help="what --fail-first answers: 503 or 429 (with Retry-After) or 410 (503)",
    )
    receiver.add_argument(
        "--retry-after",
        type=_count,
        default=1,
        metavar="SECONDS",
        help="Retry-After sent with 503 and 429 (1)",
    )
    receiver.set_defaults(handler=_receiver)


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job in one command: lab captures through a sensor, the service and a "
        "receiver, on loopback",
        description="Start a receiver (the coordination centre) and the service on 127.0.0.1, "
        "replay the bundled lab captures through a real sensor process, wait until the "
        "receiver has every alert, and print what happened: the flows ingested, the alerts "
        "and why they fired, the deliveries, and the URLs to look at. Then stop everything "
        "(or, with --keep-running, at Ctrl-C). Exit status: 0 done, 1 a step failed, 2 bad "
        "options.",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="a new or empty directory to run in, kept afterwards (default: a temporary "
        "one, removed at exit)",
    )
    demo.add_argument(
        "--port", type=_port, default=0, help="the service's port (default: a free one)"
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="after the report, stay up until Ctrl-C or SIGTERM, to look around",
    )
    demo.add_argument(
        "--captures",
        type=Path,
        metavar="DIR",
        help="the .pcap/.pcapng files to replay (default: the bundled lab captures)",
    )
    demo.set_defaults(handler=_demo)


# -- trustwatch report trust ---------------------------------------------------------------------


def _add_report(commands: Any, data_dir: argparse.ArgumentParser) -> None:
    report = commands.add_parser("report", help="reports from the local store")
    kinds = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    trust = kinds.add_parser(
        "trust",
        help="trust ratings: grades by agency, biggest movers, most common failed checks",
        description="Build the trust report from the store's current ratings and their "
        "history: one CSV (a `section` column: report, grades, movers, failed_checks) or a "
        "standalone HTML page. Exit status: 0 written, 2 bad options or an unwritable --out.",
        parents=[data_dir],
    )
    trust.add_argument("--format", required=True, choices=["csv", "html"])
    trust.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    trust.add_argument(
        "--days",
        type=_positive_int,
        default=30,
        metavar="N",
        help="the window for the biggest movers, in days (30)",
    )
    trust.set_defaults(handler=_report_trust)


def _report_trust(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from api.store import open_store
    from api.trust_report import MAX_DAYS, build_trust_report

    out: Path | None = args.out
    if args.days > MAX_DAYS:
        return _fail(f"--days: at most {MAX_DAYS}", EXIT_USAGE)
    if out is not None and out.is_dir():
        return _fail(f"--out: {out} is a directory; name a file", EXIT_USAGE)
    now = datetime.now(UTC)
    store = open_store(_settings(args))
    try:
        current = store.current_ratings()
        history = store.rating_history_since(now - timedelta(days=args.days))
    finally:
        store.close()
    report = build_trust_report(current, history, now, days=args.days)
    text = report.to_csv() if args.format == "csv" else report.to_html()
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _fail(f"--out: cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
    sys.stderr.write(
        f"trust report ({args.format}) of {report.providers} providers written to {out}\n"
    )
    return EXIT_OK


def _settings(args: argparse.Namespace) -> Any:
    from api.settings import load_settings

    overrides = {
        key: value
        for key, value in (
            ("host", getattr(args, "host", None)),
            ("port", getattr(args, "port", None)),
            ("data_dir", getattr(args, "data_dir", None)),
        )
        if value is not None
    }
    return load_settings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    from api.service import serve

    serve(_settings(args))
    return EXIT_OK


def _token_create(args: argparse.Namespace) -> int:
    from api.principals import create_principal
    from api.store import open_store
    from api.tokens import Role

    store = open_store(_settings(args))
    try:
        token, info = create_principal(
            store, Role(args.role), args.name, args.sensor_id, datetime.now(UTC)
        )
    finally:
        store.close()
    bound = f" for sensor {info.sensor_id}" if info.sensor_id else ""
    sys.stderr.write(f"created {info.role} token {info.id} ({info.name}){bound}; shown once:\n")
    sys.stdout.write(token + "\n")
    return EXIT_OK


def _token_list(args: argparse.Namespace) -> int:
    from api.store import open_store

    store = open_store(_settings(args))
    try:
        principals = store.list_principals()
    finally:
        store.close()
    sys.stdout.write(f"{'id':>4}  {'role':<8} {'key id':<12}  {'sensor':<20} {'state':<8} name\n")
    for p in principals:
        state = "revoked" if p.revoked_at else "active"
        sys.stdout.write(
            f"{p.id:>4}  {p.role:<8} {p.key_id:<12}  {p.sensor_id or '-':<20} {state:<8} {p.name}\n"
        )
    return EXIT_OK


def _token_revoke(args: argparse.Namespace) -> int:
    from api.store import open_store

    store = open_store(_settings(args))
    try:
        info = store.revoke_principal(args.id, datetime.now(UTC))
    finally:
        store.close()
    if info is None:
        return _fail(f"no token with id {args.id}", EXIT_FAILED)
    sys.stderr.write(f"revoked token {info.id} ({info.name})\n")
    return EXIT_OK


def _rules_check(args: argparse.Namespace) -> int:
    from rules.loader import load_rules

    pack = load_rules(args.paths)
    for problem in pack.problems:
        sys.stdout.write(f"{problem}\n")
    sys.stderr.write(
        f"{len(pack.rules)} rules and {len(pack.correlations)} correlation rules load; "
        f"{len(pack.problems)} problems\n"
    )
    return EXIT_FAILED if pack.problems else EXIT_OK


def _rules_export(args: argparse.Namespace) -> int:
    import orjson

    from rules.elastic import (
        DEFAULT_INDEX,
        Language,
        as_text,
        export_rules,
        index_patterns,
        sigma_rules,
    )
    from rules.kibana import kibana_rule
    from rules.loader import load_rules

    try:
        index = index_patterns(args.index) if args.index else DEFAULT_INDEX
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    pack = load_rules(args.paths)
    sigma = sigma_rules(pack.rules)
    if pack.problems:
        for problem in pack.problems:
            sys.stderr.write(f"{problem}\n")
        return _fail("the rules do not load (see above); nothing exported", EXIT_USAGE)
    # ndjson: Kibana rules, each in Lucene (a classic query rule) where Lucene can say it
    languages = {"esql": [Language.ESQL], "lucene": [Language.LUCENE]}.get(
        args.format, [Language.LUCENE, Language.ESQL]
    )
    export = export_rules(pack, sigma, languages, index, metadata=args.format == "ndjson")
    if args.format == "ndjson":
        lines = (orjson.dumps(kibana_rule(rule, index)) + b"\n" for rule in export.rules)
        sys.stdout.write(b"".join(lines).decode())
    else:
        sys.stdout.write(as_text(export))
    for problem in export.problems:
        sys.stderr.write(f"{problem}\n")
    total = len(pack.rules) + len(pack.correlations)
    sys.stderr.write(
        f"{len(export.rules)} of {total} rules exported as {args.format}; "
        f"{len(export.problems)} could not be\n"
    )
    return EXIT_FAILED if export.problems else EXIT_OK


def _rules_import_sigmahq(args: argparse.Namespace) -> int:
    from rules.community import COMMUNITY_RULES
    from rules.sigmahq import CheckoutError, import_sigmahq

    out = args.out or COMMUNITY_RULES
    try:
        report = import_sigmahq(
            args.checkout, out, today=datetime.now(UTC).date(), dry_run=args.dry_run
        )
    except CheckoutError as exc:
        return _fail(str(exc), EXIT_USAGE)
    where = "dry run: nothing written" if args.dry_run else f"written to {out}"
    sys.stdout.write("\n".join([*report.summary(), where]) + "\n")
    return EXIT_OK


def _receiver(args: argparse.Namespace) -> int:
    import os
    from datetime import timedelta

    from api.delivery.errors import SecretError
    from api.delivery.receiver import (
        ReceiverSettings,
        parse_secrets,
        read_secret_file,
        run_receiver,
    )

    if args.secret_file is not None:
        keys = read_secret_file(args.secret_file)
    elif args.secret:
        keys = parse_secrets(" ".join(args.secret))
    else:
        keys = parse_secrets(os.environ.get("TRUSTWATCH_RECEIVER_SECRET", ""))
    if not keys:
        raise SecretError(
            "no secret: pass --secret-file FILE, set TRUSTWATCH_RECEIVER_SECRET, or --secret"
        )
    run_receiver(
        ReceiverSettings(
            keys=keys,
            out=args.out,
            host=args.host,
            port=args.port,
            tolerance=timedelta(seconds=args.tolerance),
            max_body=args.max_body_bytes,
            fail_first=args.fail_first,
            fail_status=args.fail_status,
            retry_after=args.retry_after,
        )
    )
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: F401 - the demo runs the service: a missing extra is named now

    from api.demo.errors import DemoError, DemoUsageError
    from api.demo.run import LAB, DemoOptions, run_demo

    options = DemoOptions(
        data_dir=args.data_dir,
        port=args.port,
        keep_running=args.keep_running,
        captures=args.captures or LAB,
    )
    try:
        return run_demo(options, out=sys.stdout, progress=sys.stderr)
    except DemoUsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except DemoError as exc:
        return _fail(str(exc), EXIT_FAILED)


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 for any free one."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 10**9")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 10**9")
    return int(text)


def _row_id(text: str) -> int:
    """An argparse type: a token id as the store numbers them (1 to 2**63 - 1)."""
    if not text.isdigit() or not 1 <= int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a token id (see `token list`)")
    return int(text)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"trustwatch: error: {message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
