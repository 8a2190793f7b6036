"""Site-scan throughput: hosts fully scanned per minute against a pool of local test sites,
at the concurrency you choose, next to testssl.sh and sslscan scanning one of them in the
same run.

What one invocation does (any user; nothing leaves loopback):

1. starts a DNS server for the zone ``bench.test`` (tests/scanner/dnszone.py: SPF, DMARC,
   CAA, two name servers in two /24s) and ``--hosts`` sites ``site-<i>.bench.test``, each on
   its own loopback address 127.0.10.<i>, HTTPS on 8443 with a certificate from a private CA
   (trustme) and HTTP on 8080 redirecting to it; the sites serve a realistic home page with
   external scripts, cookies and a typical set of security headers;
2. scans one host as a warm-up (not counted), then every host with
   :func:`sensors.scanner.runner.scan_hosts` at concurrency 1 and at ``--concurrency``: all six
   areas, every check, with the default policy except that loopback is allowed and the ports,
   resolver and CA point at the pool;
3. runs ``testssl`` (Debian's testssl.sh, default checks) and ``sslscan`` on site-1, timed,
   where installed;
4. prints hosts per minute, per-host p50/p95/max seconds, the checks that could not run (they
   should be none), and the ratios against the tools.

The exposure area's port scan is paced at the policy's ``port_rate`` (20 connection attempts a
second by default, the pace a polite scanner keeps on the internet); with 16 high-risk ports
per address it alone takes ~0.8 s per host and bounds throughput at concurrency 1.

    python bench/scan.py --hosts 24 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensors.scanner.policy import ScanPolicy
from sensors.scanner.result import CheckStatus, ScanReport
from sensors.scanner.runner import scan_hosts
from tests.scanner.conftest import Route, Site, server_context
from tests.scanner.dnszone import ZoneServer

HTTPS_PORT = 8443
HTTP_PORT = 8080
NS_ADDRESSES = ("127.0.11.1", "127.0.12.1")


def zone(hosts: int) -> str:
    lines = [
        "$ORIGIN bench.test.",
        "$TTL 300",
        "@ IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 86400 300",
        "@ IN NS ns1.bench.test.",
        "@ IN NS ns2.bench.test.",
        f"ns1 IN A {NS_ADDRESSES[0]}",
        f"ns2 IN A {NS_ADDRESSES[1]}",
        '@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"',
        '_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@bench.test"',
        '@ IN CAA 0 issue "letsencrypt.org"',
    ]
    lines += [f"site-{i} IN A 127.0.10.{i}" for i in range(1, hosts + 1)]
    return "\n".join(lines) + "\n"


def home(https_port: int) -> Route:
    body = (
        "<!doctype html><html><head><title>Cổng dịch vụ công</title>"
        '<script src="https://cdn.example.net/jquery.min.js"></script>'
        '<script src="/static/app.js" integrity="sha384-x"></script>'
        '<link rel="stylesheet" href="/static/site.css"></head><body>'
        "<h1>Dịch vụ công trực tuyến</h1>"
        + "".join(f'<a href="/news/{n}">Tin {n}</a>' for n in range(40))
        + '<a href="/chinh-sach-bao-mat">Chính sách bảo mật</a>'
        '<iframe src="https://maps.example.org/embed"></iframe></body></html>'
    ).encode()
    return Route(
        headers=(
            ("Content-Type", "text/html; charset=utf-8"),
            ("Strict-Transport-Security", "max-age=15768000"),
            ("X-Frame-Options", "SAMEORIGIN"),
            ("Set-Cookie", "PHPSESSID=abc; Path=/; Secure; HttpOnly"),
            ("Server", "nginx/1.18.0"),
        ),
        body=body,
    )


def start_pool(hosts: int, ca: trustme.CA) -> tuple[list[Site], ZoneServer]:
    sites = []
    for i in range(1, hosts + 1):
        name = f"site-{i}.bench.test"
        address = f"127.0.10.{i}"
        https = Site(routes={"/": home(HTTPS_PORT)}, port=HTTPS_PORT, address=address)
        https.start(server_context(ca, name))
        target = f"https://{name}:{HTTPS_PORT}/"
        redirect = Route(301, (("Location", target),), b"")
        http = Site(routes={"/": redirect}, port=HTTP_PORT, address=address).start()
        sites += [https, http]
    dns = ZoneServer([zone(hosts)], addresses=("127.0.0.1", *NS_ADDRESSES)).start()
    return sites, dns


def policy_for(dns: ZoneServer, ca_file: Path) -> ScanPolicy:
    return ScanPolicy(
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        https_port=HTTPS_PORT,
        http_port=HTTP_PORT,
        nameservers=(f"127.0.0.1:{dns.port}",),
        dns_port=dns.port,
        ca_file=ca_file,
    )


def run_pass(
    names: list[str], policy: ScanPolicy, concurrency: int
) -> tuple[float, list[ScanReport]]:
    started = time.perf_counter()
    results = asyncio.run(scan_hosts(names, policy, concurrency=concurrency))
    elapsed = time.perf_counter() - started
    reports = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, Exception):
            raise SystemExit(f"{name}: the scan could not start: {result}")
        reports.append(result)
    return elapsed, reports


def timed_tool(argv: list[str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    return time.perf_counter() - started, done.returncode, (done.stdout + done.stderr)[-300:]


def describe(label: str, elapsed: float, reports: list[ScanReport]) -> float:
    per_host = [(r.finished - r.started).total_seconds() for r in reports]
    cuts = (
        statistics.quantiles(per_host, n=100, method="inclusive")
        if len(per_host) > 1
        else per_host * 100
    )
    rate = len(reports) / elapsed * 60
    checks = sum(len(r.checks) for r in reports)
    errors = sorted({c.id for r in reports for c in r.checks if c.status is CheckStatus.ERROR})
    print(
        f"{label:<16} {len(reports):>3} hosts in {elapsed:6.1f} s  = {rate:6.1f} hosts/min   "
        f"per host p50 {cuts[49]:.2f} s, p95 {cuts[94]:.2f} s, max {max(per_host):.2f} s   "
        f"{checks} checks, could not run: {', '.join(errors) or 'none'}"
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=24, help="sites in the pool (1-250, 24)")
    parser.add_argument("--concurrency", type=int, default=8, help="hosts scanned at once (8)")
    parser.add_argument("--no-tools", action="store_true", help="skip testssl.sh and sslscan")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 250 or not 1 <= args.concurrency <= 64:
        parser.error("--hosts 1-250, --concurrency 1-64")
    ca = trustme.CA()
    with tempfile.TemporaryDirectory(prefix="twbench-scan-") as work:
        ca_file = Path(work) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        sites, dns = start_pool(args.hosts, ca)
        try:
            policy = policy_for(dns, ca_file)
            names = [f"site-{i}.bench.test" for i in range(1, args.hosts + 1)]
            print(
                f"pool: {args.hosts} sites on 127.0.10.1-{args.hosts}, HTTPS {HTTPS_PORT}, "
                f"HTTP {HTTP_PORT}; DNS on 127.0.0.1:{dns.port}; port_rate {policy.port_rate:g}/s"
            )
            run_pass(names[:1], policy, 1)  # warm-up: imports, first connections
            serial_elapsed, serial = run_pass(names, policy, 1)
            serial_rate = describe("concurrency 1", serial_elapsed, serial)
            wide_elapsed, wide = run_pass(names, policy, args.concurrency)
            wide_rate = describe(f"concurrency {args.concurrency}", wide_elapsed, wide)
            grades = {(g.name, g.grade) for r in wide for g in r.grades}
            print(f"sub-grades seen: {sorted(grades, key=str)}")
            print(
                f"speed-up of concurrency {args.concurrency} over 1: {wide_rate / serial_rate:.2f}x"
            )
            if not args.no_tools:
                ours = serial_elapsed / len(serial)
                tools = {
                    "testssl": [
                        "testssl",
                        "--quiet",
                        "--color",
                        "0",
                        "--warnings",
                        "off",
                        "--add-ca",
                        str(ca_file),
                        "--ip",
                        "127.0.10.1",
                        f"https://site-1.bench.test:{HTTPS_PORT}/",
                    ],
                    "sslscan": [
                        "sslscan",
                        "--no-colour",
                        "--sni-name=site-1.bench.test",
                        f"127.0.10.1:{HTTPS_PORT}",
                    ],
                }
                for tool, argv in tools.items():
                    if shutil.which(argv[0]) is None:
                        package = "testssl.sh" if tool == "testssl" else tool
                        print(f"{tool}: not installed (apt-get install {package})")
                        continue
                    seconds, code, tail = timed_tool(argv)
                    print(
                        f"{tool} on site-1 (TLS only): {seconds:.1f} s, exit {code}; "
                        f"= {60 / seconds:.1f} hosts/min. Ours, all six areas: {ours:.2f} s a "
                        f"host at concurrency 1 (tool time / ours = {seconds / ours:.2f}); "
                        f"pool rate at concurrency {args.concurrency} / tool rate = "
                        f"{wide_rate / (60 / seconds):.2f}"
                    )
                    if code not in (0, 1) and tail:
                        print(f"  {tool} said: {tail!r}")
        finally:
            for site in sites:
                site.stop()
            dns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
