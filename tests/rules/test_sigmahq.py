"""The importer of SigmaHQ's rules, on a git checkout laid out like SigmaHQ's; what ships in
``rules/community/``; and a real SigmaHQ checkout when one is at hand. The checkout's rules are
our own, written in SigmaHQ's conventions; no SigmaHQ rule is copied."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path, PurePosixPath

import pytest

from rules.community import COMMUNITY_RULES
from rules.engine import RuleEngine
from rules.loader import load_rules
from rules.sigmahq import (
    LICENCE_FILE,
    SOURCE_FILE,
    CheckoutError,
    ImportReport,
    Rejection,
    Verdict,
    import_sigmahq,
    open_checkout,
    source_markdown,
)
from tests.rules.test_community import (
    BENIGN,
    DNS,
    PROXY,
    WEBSERVER,
    ZEEK_CONN,
    ZEEK_DNS,
    ZEEK_HTTP,
    ZEEK_SSL,
)

# Read at collection: the autouse fixture clears TRUSTWATCH_* before each test runs.
SIGMAHQ_DIR = os.environ.get("TRUSTWATCH_SIGMAHQ_DIR")
TODAY = date(2026, 1, 2)
LICENCE_TEXT = "Placeholder for the Detection Rule License, written by the test.\n"

TELNET_ID = "7e57c0de-0000-4000-8000-000000000004"
CHECKOUT = {
    "rules/web/proxy_generic/proxy_test_download.yml": PROXY,
    "rules/web/webserver_generic/web_test_traversal.yml": WEBSERVER,
    "rules/network/dns/net_dns_test_tunnel.yml": DNS,
    "rules/network/zeek/zeek_conn_test.yml": ZEEK_CONN,
    "rules/network/zeek/zeek_dns_test.yml": ZEEK_DNS,
    "rules/network/zeek/zeek_http_test.yml": ZEEK_HTTP,
    "rules/network/zeek/zeek_ssl_test.yml": ZEEK_SSL,
    "rules/web/proxy_generic/proxy_test_cookie.yml": (
        "title: Test cookie\nid: 7e57c0de-0000-4000-8000-000000000010\nstatus: test\n"
        "logsource: {category: proxy}\ndetection:\n  sel:\n    cs-cookie|contains: evil\n"
        "  condition: sel\nlevel: low\n"
    ),
    "rules/web/proxy_generic/proxy_test_deprecated.yml": PROXY.replace(
        "status: test", "status: deprecated"
    ).replace("-000000000001", "-000000000011"),
    "rules/network/zeek/zeek_zz_conn_copy.yml": ZEEK_CONN.replace("zeek conn", "zeek conn again"),
    "rules/network/zeek/zeek_dce_rpc_test.yml": (
        "title: Test dce rpc\nid: 7e57c0de-0000-4000-8000-000000000012\nstatus: test\n"
        "logsource:\n  product: zeek\n  service: dce_rpc\ndetection:\n"
        "  sel: {operation: NetrJobAdd}\n  condition: sel\nlevel: low\n"
    ),
    "rules/network/cisco/aaa/cisco_test.yml": (
        "title: Test cisco\nid: 7e57c0de-0000-4000-8000-000000000013\nstatus: test\n"
        "logsource:\n  product: cisco\n  service: aaa\ndetection:\n  keywords: [clear logging]\n"
        "  condition: keywords\nlevel: low\n"
    ),
    "rules/network/firewall/net_firewall_test_count.yml": (
        "title: Test old aggregation\nid: 7e57c0de-0000-4000-8000-000000000014\nstatus: test\n"
        "logsource: {category: firewall}\ndetection:\n  sel: {dst_port: 53}\n"
        "  condition: sel | count() by src_ip > 1000\nlevel: low\n"
    ),
    "rules/network/firewall/net_firewall_test_correlation.yml": (
        "title: Test correlation\nid: 7e57c0de-0000-4000-8000-000000000015\nstatus: test\n"
        f"correlation:\n  type: event_count\n  rules: [{TELNET_ID}]\n  group-by: [src_ip]\n"
        "  timespan: 1m\n  condition: {gte: 10}\nlevel: low\n"
    ),
    "rules/windows/process_creation/proc_creation_test.yml": PROXY,  # not walked
}
KEPT = (
    "rules/network/dns/net_dns_test_tunnel.yml",
    "rules/network/zeek/zeek_conn_test.yml",
    "rules/network/zeek/zeek_dns_test.yml",
    "rules/network/zeek/zeek_http_test.yml",
    "rules/network/zeek/zeek_ssl_test.yml",
    "rules/web/proxy_generic/proxy_test_download.yml",
    "rules/web/webserver_generic/web_test_traversal.yml",
)
_GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        [
            *("git", "-C", str(root), "-c", "user.name=TrustWatch tests"),
            *("-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", *args),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **_GIT_ENV},
    )
    return result.stdout.strip()


def make_checkout(root: Path, files: dict[str, str] = CHECKOUT) -> str:
    """A git repository laid out like SigmaHQ/sigma, committed; its commit id."""
    for relative, text in {LICENCE_FILE: LICENCE_TEXT, **files}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "rules")
    return git(root, "rev-parse", "HEAD")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_importer_keeps_exactly_the_rules_that_map(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    commit = make_checkout(checkout)
    report = import_sigmahq(checkout, out, today=TODAY)
    rejected = [(str(v.path), v.rejection, v.detail) for v in report.rejected]
    assert sorted(
        [
            (
                "rules/network/cisco/aaa/cisco_test.yml",
                Rejection.LOGSOURCE,
                "logsource {product: cisco, service: aaa}",
            ),
            (
                "rules/network/firewall/net_firewall_test_correlation.yml",
                Rejection.CORRELATION,
                "correlation rules are not imported",
            ),
            (
                "rules/network/firewall/net_firewall_test_count.yml",
                Rejection.UNUSABLE,
                "line 1: The pipe syntax in Sigma "
                "conditions has been deprecated and replaced by Sigma correlations. pySigma "
                "doesn't supports this syntax.",
            ),
            (
                "rules/network/zeek/zeek_dce_rpc_test.yml",
                Rejection.LOGSOURCE,
                "line 4: TrustWatch flows answer Zeek's conn, dns, http, ssl logs, not its "
                "dce_rpc log",
            ),
            (
                "rules/web/proxy_generic/proxy_test_cookie.yml",
                Rejection.FIELD,
                "line 7: field cs-cookie is not carried by TrustWatch flows: the sensor does "
                "not read cookies",
            ),
            (
                "rules/web/proxy_generic/proxy_test_deprecated.yml",
                Rejection.STATUS,
                "status deprecated",
            ),
            (
                "rules/network/zeek/zeek_zz_conn_copy.yml",
                Rejection.DUPLICATE,
                f"id {TELNET_ID} is also that of rules/network/zeek/zeek_conn_test.yml",
            ),
        ]
    ) == sorted(rejected)
    assert (commit, False, KEPT) == (
        report.commit,
        report.changed,
        tuple(sorted(str(v.path) for v in report.kept)),
    )
    expected = {
        **{k.removeprefix("rules/"): CHECKOUT[k].encode() for k in KEPT},
        LICENCE_FILE: LICENCE_TEXT.encode(),
        SOURCE_FILE: source_markdown(report).encode(),
    }
    assert expected == tree(out)
    assert f"- commit: {commit}" in source_markdown(report).splitlines()
    pack = load_rules([out])
    assert ((), 7) == (pack.problems, len(pack.rules))


def test_the_importer_is_idempotent_and_removes_only_rules_it_no_longer_keeps(
    tmp_path: Path,
) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    make_checkout(checkout)
    import_sigmahq(checkout, out, today=TODAY)
    first = tree(out)
    (out / "web" / "old").mkdir()
    (out / "web" / "old" / "gone.yml").write_text(PROXY, encoding="utf-8")
    (out / "README.md").write_text("ours\n", encoding="utf-8")
    import_sigmahq(checkout, out, today=TODAY)
    assert ({**first, "README.md": b"ours\n"}, False) == (tree(out), (out / "web/old").exists())


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    checkout, out = tmp_path / "sigma", tmp_path / "community"
    make_checkout(checkout)
    report = import_sigmahq(checkout, out, today=TODAY, dry_run=True)
    assert (7, False) == (len(report.kept), out.exists())


def test_the_commit_is_read_without_git_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "sigma"
    commit = make_checkout(checkout)
    (checkout / "rules/network/dns/net_dns_test_tunnel.yml").write_text(DNS + "# local\n")

    def without_git() -> tuple[str, bool | None]:
        with monkeypatch.context() as patch:
            patch.setenv("PATH", "")
            found = open_checkout(checkout)
        return found.commit, found.changed

    with_git = open_checkout(checkout)
    loose = without_git()
    git(checkout, "pack-refs", "--all")
    packed = without_git()
    git(checkout, "checkout", "-q", "--detach")
    detached = without_git()
    assert [(commit, True), (commit, None), (commit, None), (commit, None)] == [
        (with_git.commit, with_git.changed),
        loose,
        packed,
        detached,
    ]


def test_what_is_not_a_sigmahq_checkout_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    make_checkout(outer, {"README": "another repository\n"})
    inner = outer / "copy"
    for relative in (LICENCE_FILE, "rules/web/x.yml", "rules/network/y.yml"):
        (inner / relative).parent.mkdir(parents=True, exist_ok=True)
        (inner / relative).write_text("x\n", encoding="utf-8")
    (tmp_path / "half" / "rules" / "web").mkdir(parents=True)
    messages = []
    for root in (tmp_path / "missing", tmp_path / "half", inner):
        with pytest.raises(CheckoutError) as caught:
            open_checkout(root)
        messages.append(str(caught.value))
    assert [
        f"{tmp_path / 'missing'} is not a directory",
        f"{tmp_path / 'half'} is not a SigmaHQ/sigma checkout: it has no {LICENCE_FILE}, "
        "rules/network (clone https://github.com/SigmaHQ/sigma)",
        f"{inner} is not a git checkout: the import records the commit its rules come from; "
        "clone https://github.com/SigmaHQ/sigma with git",
    ] == messages


def test_source_md_names_commit_date_and_every_verdict() -> None:
    report = ImportReport(
        "0" * 40,
        None,
        TODAY,
        (
            Verdict(PurePosixPath("rules/web/a.yml"), "A rule"),
            Verdict(PurePosixPath("rules/web/b.yml"), "B", Rejection.STATUS, "status deprecated"),
        ),
    )
    assert (
        "# Community rules: source\n\n"
        "Imported by `trustwatch rules import-sigmahq` from SigmaHQ/sigma; the rule files are\n"
        "copied unmodified and licensed under the Detection Rule License "
        "(LICENSE.Detection.Rules.md).\n\n"
        "- repository: https://github.com/SigmaHQ/sigma\n"
        f"- commit: {'0' * 40}\n"
        "- local changes in the checkout: unknown (no git)\n"
        "- imported: 2026-01-02\n"
        "- rule files kept: 1 of 2 under rules/web, rules/network\n\n"
        "## Kept (1)\n\n- `rules/web/a.yml`: A rule\n\n"
        "## Rejected (1)\n\n- `rules/web/b.yml`: deprecated or unsupported: status deprecated\n"
    ) == source_markdown(report)
    assert [
        f"SigmaHQ/sigma {'0' * 12}: kept 1 of 2 rule files, rejected 1",
        "     1 deprecated or unsupported",
    ] == report.summary()


# What ships in rules/community/, and a real SigmaHQ checkout when one is at hand.


def test_the_community_directory_loads_clean_and_stays_quiet_on_benign_flows() -> None:
    files = sorted(p for p in COMMUNITY_RULES.rglob("*") if p.suffix in (".yml", ".yaml"))
    pack = load_rules([COMMUNITY_RULES])
    detections = RuleEngine(pack).evaluate_all(list(BENIGN))
    provenance = {(COMMUNITY_RULES / n).is_file() for n in (LICENCE_FILE, SOURCE_FILE)}
    assert ((), (), [], True, {bool(files)}) == (
        pack.problems,
        pack.correlations,
        detections,
        (COMMUNITY_RULES / "README.md").is_file(),
        provenance,
    )
    assert len(files) <= len(pack.rules)


@pytest.mark.skipif(
    SIGMAHQ_DIR is None,
    reason="TRUSTWATCH_SIGMAHQ_DIR is not set: point it at a SigmaHQ/sigma git checkout",
)
def test_a_real_sigmahq_checkout_imports_rules_that_load_and_run(tmp_path: Path) -> None:
    out = tmp_path / "community"
    report = import_sigmahq(Path(str(SIGMAHQ_DIR)), out, today=TODAY)
    pack = load_rules([out])
    RuleEngine(pack).evaluate_all(list(BENIGN))  # runs every rule on every record
    loaded = {r.path.relative_to(out).as_posix() for r in pack.rules}
    kept = {v.path.relative_to("rules").as_posix() for v in report.kept}
    assert (True, (), (), kept) == (len(kept) > 0, pack.problems, pack.correlations, loaded)
