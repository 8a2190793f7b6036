"""The published methodology comes from the table the scorer reads: the committed
scoring/METHODOLOGY.md is current, the JSON document holds every row, and the table adds up."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from scoring.methodology import methodology_document, render_markdown
from scoring.trust import METHODOLOGY
from scoring.trust_model import Category

SNAPSHOT = Path(__file__).resolve().parents[2] / "scoring" / "METHODOLOGY.md"


def test_the_committed_methodology_page_is_current() -> None:
    """scoring/METHODOLOGY.md is generated from scoring/trust.py's table.

    Regenerate with: TRUSTWATCH_UPDATE_SNAPSHOTS=1 pytest tests/scoring/test_methodology.py
    """
    actual = render_markdown(METHODOLOGY)
    if os.environ.get("TRUSTWATCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(actual, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == actual, (
        "scoring/METHODOLOGY.md is stale: regenerate it with "
        "TRUSTWATCH_UPDATE_SNAPSHOTS=1 pytest tests/scoring/test_methodology.py"
    )


def test_the_page_follows_the_table() -> None:
    bands = (("A", 86), *METHODOLOGY.bands.bands[1:])
    changed = replace(METHODOLOGY, version="TNM-2", bands=replace(METHODOLOGY.bands, bands=bands))
    page = render_markdown(changed)
    assert (True, True, False) == (
        page.startswith("# TrustWatch trust-rating methodology TNM-2\n"),
        "| A | ≥ 86 |" in page,
        "| A | ≥ 85 |" in page,
    )


def test_the_document_is_json_with_every_row() -> None:
    document = methodology_document(METHODOLOGY)
    assert document == json.loads(json.dumps(document))
    assert (
        "TNM-1",
        [["A", 85], ["B", 70], ["C", 55], ["D", 40]],
        {
            "availability": 300.0,
            "http": 86400.0,
            "dns": 86400.0,
            "disclosure": 86400.0,
            "tls": 604800.0,
            "exposure": 604800.0,
        },
        {"confirm_after": 3600.0, "confirm_vantages": 2},
        9,
        12,
    ) == (
        document["version"],
        document["bands"]["bands"],
        document["cadences"],
        document["stability"],
        len(document["incidents"]["rows"]),
        len(document["http"]["checks"]),
    )
    assert {
        "kind": "data_breach",
        "name": "confirmed data breach",
        "base": 25,
        "half_life_days": 120,
        "max_age_days": 730,
        "cap": "C",
        "cap_days": 30,
        "warning": False,
        "compromise": True,
    } == document["incidents"]["rows"][4]


def test_the_items_add_up_to_their_categories() -> None:
    t, r, d = METHODOLOGY.tls, METHODOLOGY.reputation, METHODOLOGY.disclosure
    items = {
        Category.T: t.grade.points + t.expiry.points + t.names.points + t.consistency.points,
        Category.H: METHODOLOGY.http.points,
        Category.D: sum(i.points for i in METHODOLOGY.dns),
        Category.X: METHODOLOGY.exposure.points,
        Category.R: r.blocklist_points
        + r.availability[0].points
        + r.ttfb_points
        + r.integrity_points,
        Category.G: d.security_txt.points + d.privacy_policy.points,
    }
    assert {c.category: c.points for c in METHODOLOGY.categories} == items
    assert 100 == sum(items.values())
    # Each additive item earns at most its points, and its best rung earns them all.
    for item in METHODOLOGY.scored_checks:
        assert item.points == max(points for _, points in item.earns), item.key


def test_every_cap_names_a_grade_the_bands_know() -> None:
    order = METHODOLOGY.bands.order
    caps = [c.grade for c in METHODOLOGY.finding_caps]
    caps += [cap for _, cap in METHODOLOGY.tls_caps.carry]
    caps += [r.cap for r in METHODOLOGY.incidents.rows if r.cap is not None]
    caps += [cap for _, cap in METHODOLOGY.incidents.probation]
    assert set() == set(caps) - set(order[1:])
