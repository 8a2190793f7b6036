"""The public badge, read back as XML: colours, texts, widths, escaping."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.badge import (
    GRADE_COLOURS,
    LABEL_COLOUR,
    MAX_CHARS,
    UNRATED_COLOUR,
    WARNING_COLOUR,
    render_badge,
    text_width,
)

SVG = "{http://www.w3.org/2000/svg}"
ALLOWED_TAGS = {f"{SVG}{tag}" for tag in ("svg", "title", "rect", "path", "g", "text")}
RATED = date(2026, 11, 23)


def read(svg: str) -> dict[str, Any]:
    """What a badge shows: size, colours, the visible texts and where, the accessible name."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    rect = root.find(f"{SVG}rect")
    path = root.find(f"{SVG}path")
    title = root.find(f"{SVG}title")
    assert rect is not None
    assert path is not None
    assert title is not None
    texts = [t for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]
    return {
        "width": int(root.get("width", "")),
        "viewBox": root.get("viewBox"),
        "label_width": int(path.get("d", "").split("H")[1].split("V")[0]),
        "colour": rect.get("fill"),
        "label_colour": path.get("fill"),
        "title": title.text,
        "aria-label": root.get("aria-label"),
        "texts": [(t.text, float(t.get("x", "")), float(t.get("textLength", ""))) for t in texts],
    }


def test_a_rated_badge_shows_label_grade_and_date() -> None:
    assert {
        "width": 183,
        "viewBox": "0 0 183 20",
        "label_width": 76,
        "colour": "#116329",
        "label_colour": LABEL_COLOUR,
        "title": "TrustWatch trust rating: A+, rated 2026-11-23",
        "aria-label": "TrustWatch trust rating: A+, rated 2026-11-23",
        # TrustWatch: 63.2 px + 2 x 6 padding = 76; the value half centred after it
        "texts": [("TrustWatch", 38.0, 63.2), ("A+ \u00b7 2026-11-23", 129.5, 94.1)],
    } == read(render_badge("A+", RATED))


@pytest.mark.parametrize(
    ("grade", "colour"),
    [
        ("A+", "#116329"),
        ("A", "#2e8540"),
        ("B", "#6a7d0a"),
        ("C", "#8a6d00"),
        ("D", "#b35000"),
        ("F", "#c62828"),
        ("Provisional", UNRATED_COLOUR),
        ("Not rated", UNRATED_COLOUR),
        ("Z", UNRATED_COLOUR),  # a grade this badge does not know is not given a colour
    ],
)
def test_one_colour_per_grade(grade: str, colour: str) -> None:
    shown = read(render_badge(grade, RATED))
    assert (colour, f"{grade} \u00b7 2026-11-23") == (shown["colour"], shown["texts"][1][0])


def test_the_grade_colours_are_distinct_and_none_is_the_warnings() -> None:
    letters = [GRADE_COLOURS[g] for g in ("A+", "A", "B", "C", "D", "F")]
    assert (6, False) == (len(set(letters)), WARNING_COLOUR in letters)


def test_without_a_date_the_grade_stands_alone() -> None:
    shown = read(render_badge("Not rated", None))
    assert (["TrustWatch", "Not rated"], "TrustWatch trust rating: Not rated") == (
        [text for text, _, _ in shown["texts"]],
        shown["title"],
    )


def test_the_warning_variant_is_red_and_names_the_incident() -> None:
    shown = read(render_badge("F", RATED, warning=True))
    assert (
        WARNING_COLOUR,
        ["TrustWatch", "\u26a0 F \u00b7 active incident"],
        "TrustWatch trust rating: F, warning: an active security incident",
    ) == (shown["colour"], [text for text, _, _ in shown["texts"]], shown["title"])


def test_width_grows_with_the_text_and_the_halves_add_up() -> None:
    shown = [read(render_badge("B", RATED, label="W" * n)) for n in range(1, 30)]
    widths = [s["width"] for s in shown]
    value_halves = {s["width"] - s["label_width"] for s in shown}
    assert (True, 1) == (
        all(a < b for a, b in itertools.pairwise(widths)),
        len(value_halves),
    )
    for s in shown:
        (_, label_x, label_len), (_, value_x, _) = s["texts"]
        assert (s["label_width"] / 2, s["label_width"] + (s["width"] - s["label_width"]) / 2) == (
            label_x,
            value_x,
        )
        assert label_len + 12 <= s["label_width"] < label_len + 13


@given(st.text(max_size=20), st.text(min_size=1, max_size=3))
def test_appending_text_never_makes_it_narrower(text: str, more: str) -> None:
    assert text_width(text) <= text_width(text + more)


def test_character_widths_follow_verdana() -> None:
    assert [3.0, 9.3, 7.0, 7.5, 0.0, 11.0, 11.0, 7.0] == [
        text_width("i"),
        text_width("M"),
        text_width("0"),
        text_width("\u00c1"),  # Á is as wide as A
        text_width("\u0301"),  # a combining accent takes no room
        text_width("\u26a0"),  # a symbol from a fallback font: one em
        text_width("\u4e2d"),  # a CJK character: one em
        text_width("\u0436"),  # a Cyrillic letter: an average letter
    ]


def test_hostile_text_is_escaped_and_stays_text() -> None:
    label = '<script>alert("x")</script>&amp;\x00\x1b\ufffe'
    svg = render_badge('A"><script>', RATED, label=label)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    shown = read(svg)
    assert (
        {t.tag for t in root.iter()} <= ALLOWED_TAGS,
        [
            '<script>alert("x")</script>&amp;',
            'A"><script> \u00b7 2026-11-23',
        ],
        '<script>alert("x")</script>&amp; trust rating: A"><script>, rated 2026-11-23',
        UNRATED_COLOUR,
    ) == (True, [text for text, _, _ in shown["texts"]], shown["title"], shown["colour"])


def test_no_external_references_scripts_or_ids() -> None:
    svg = render_badge("C", RATED, label="javascript:alert(1)")
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    attributes = {name for element in root.iter() for name in element.attrib}
    assert (set(), False, False) == (
        {a for a in attributes if a.endswith(("href", "id")) or a.startswith("on")},
        "url(" in svg,
        "http" in svg.replace('xmlns="http://www.w3.org/2000/svg"', ""),
    )


def test_whitespace_is_one_line_and_long_text_is_cut() -> None:
    shown = read(render_badge("B", None, label="Ministry\n\tof   Health " + "x" * 60))
    label = shown["texts"][0][0]
    assert (MAX_CHARS, "Ministry of Health " + "x" * 20 + "\u2026") == (len(label), label)


@given(st.text(max_size=60), st.text(max_size=10), st.booleans())
def test_any_text_gives_a_well_formed_badge(label: str, grade: str, warning: bool) -> None:
    root = ET.fromstring(render_badge(grade, RATED, warning=warning, label=label))  # noqa: S314
    assert {t.tag for t in root.iter()} <= ALLOWED_TAGS
