"""The public trust badge: a small flat SVG, ``label | grade · date``, to embed on a site.

One colour per grade, from green (A+) to red (F), grey while a provider is *Not rated* or
*Provisional*; a red warning variant while an incident that caps the grade at F is active.
Each half is as wide as its text in Verdana 11 px (the font badges use; the table below gives
each character's advance width) plus padding, so that nothing is clipped or stretched.

The SVG is self-contained: no scripts, no external references, not even internal ids (so a page
may inline several badges), and every text is XML-escaped. ``<title>`` and ``aria-label`` give
screen readers the whole sentence.

>>> svg = render_badge("A+", date(2026, 11, 23))
>>> "A+ · 2026-11-23" in svg, GRADE_COLOURS["A+"] in svg
(True, True)
>>> text_width("TrustWatch")
63.2
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date
from typing import Final
from xml.sax.saxutils import escape

from scoring.trust_model import NOT_RATED, PROVISIONAL

__all__ = [
    "GRADE_COLOURS",
    "LABEL_COLOUR",
    "UNRATED_COLOUR",
    "WARNING_COLOUR",
    "render_badge",
    "text_width",
]

UNRATED_COLOUR: Final = "#6e6e6e"  # Not rated, Provisional, and any grade not listed
WARNING_COLOUR: Final = "#b71c1c"  # deeper than F's red: the warning must stand out from an F
LABEL_COLOUR: Final = "#555555"
# Shades picked so that white 11 px text keeps a contrast of at least 4.5:1 (WCAG AA), which
# the bright shields.io yellow and orange do not.
GRADE_COLOURS: Final = {
    "A+": "#116329",  # dark green
    "A": "#2e8540",  # green
    "B": "#6a7d0a",  # yellow-green
    "C": "#8a6d00",  # dark yellow
    "D": "#b35000",  # orange
    "F": "#c62828",  # red
    PROVISIONAL: UNRATED_COLOUR,
    NOT_RATED: UNRATED_COLOUR,
}

HEIGHT: Final = 20
PADDING: Final = 6  # each side of a text
MAX_CHARS: Final = 40  # longer texts are cut (with an ellipsis): a badge is not a paragraph
FONT: Final = "Verdana,Geneva,DejaVu Sans,sans-serif"

# Advance widths of Verdana at 11 px (font units x 11 / 2048), rounded to 0.1 px, grouped by
# width: width -> the characters that have it.
_WIDTH_GROUPS: Final = {
    3.0: "'il",
    3.8: "j",
    3.9: " f",
    4.0: ",.\u00b7",
    4.3: "!t",
    4.6: "I",
    4.7: "r",
    4.9: "()-/:;[\\]|",
    5.0: '"J',
    5.7: "s",
    5.8: "z",
    5.9: "c",
    6.0: "?",
    6.3: "FL",
    6.4: "kvxy",
    6.6: "eo",
    6.7: "PTYa",
    6.9: "bdgpq",
    7.0: "$*E_`hnu{}0123456789",
    7.5: "ABSVXZ",
    7.6: "K",
    7.7: "CR",
    8.0: "&",
    8.1: "U",
    8.2: "N",
    8.3: "H",
    8.5: "DG",
    8.7: "OQ",
    8.9: "w",
    9.0: "#+<=>^~",
    9.3: "M",
    10.7: "m",
    10.9: "W",
    11.0: "@",
    11.8: "%",
}
_WIDTH: Final = {ch: width for width, chars in _WIDTH_GROUPS.items() for ch in chars}
_WIDE: Final = 11.0  # a symbol or CJK character from a fallback font: about one em
_OTHER: Final = 7.0  # a letter of another script: about an average Verdana letter

# Characters XML 1.0 does not allow at all (most C0 controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _char_width(ch: str) -> float:
    width = _WIDTH.get(ch)
    if width is not None:
        return width
    if unicodedata.combining(ch):
        return 0.0
    base = unicodedata.normalize("NFD", ch)[0]  # an accented letter is as wide as its letter
    if base in _WIDTH:
        return _WIDTH[base]
    if unicodedata.east_asian_width(ch) in ("W", "F") or unicodedata.category(ch)[0] == "S":
        return _WIDE
    return _OTHER


def text_width(text: str) -> float:
    """The width of ``text`` in Verdana 11 px, in pixels (an estimate beyond Latin script).

    >>> text_width("A+"), text_width("Ấ"), text_width("⚠")
    (16.5, 7.5, 11.0)
    """
    return round(sum(_char_width(ch) for ch in text), 1)


def _clean(text: str) -> str:
    """One line of at most :data:`MAX_CHARS` characters that XML can carry."""
    text = " ".join(_NOT_XML.sub("", text).split())
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1].rstrip() + "\u2026"
    return text


def _xml(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def _text(x: float, width: float, text: str) -> str:
    # The shadow first (as flat badges do: it keeps white text legible on light shades), then
    # the text. textLength pins the width we computed, so a fallback font cannot overflow.
    attrs = f'x="{x:g}" textLength="{width:g}"'
    body = _xml(text)
    return (
        f'<text {attrs} y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">{body}</text>'
        f'<text {attrs} y="14">{body}</text>'
    )


def render_badge(
    grade: str, rated_on: date | None, *, warning: bool = False, label: str = "TrustWatch"
) -> str:
    """The badge for ``grade`` (A+ ... F, Not rated, Provisional) rated on ``rated_on``.

    With ``warning`` (an incident capping the grade at F is active) the right half is red and
    says so instead of showing the date.

    >>> svg = render_badge("F", date(2026, 11, 23), warning=True)
    >>> "⚠ F · active incident" in svg, WARNING_COLOUR in svg
    (True, True)
    >>> '<text x="62.5" textLength="52.2" y="14">Not rated</text>' in render_badge(
    ...     "Not rated", None, label="TW")
    True
    >>> "&lt;script&gt;" in render_badge("A", None, label="<script>")
    True
    """
    label = _clean(label)
    grade = _clean(grade)
    if warning:
        value = f"\u26a0 {grade} \u00b7 active incident"
        colour = WARNING_COLOUR
        title = f"{label} trust rating: {grade}, warning: an active security incident"
    else:
        value = grade if rated_on is None else f"{grade} \u00b7 {rated_on.isoformat()}"
        colour = GRADE_COLOURS.get(grade, UNRATED_COLOUR)
        rated = "" if rated_on is None else f", rated {rated_on.isoformat()}"
        title = f"{label} trust rating: {grade}{rated}"
    label_text, value_text = text_width(label), text_width(value)
    left = math.ceil(label_text) + 2 * PADDING
    right = math.ceil(value_text) + 2 * PADDING
    total = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" '
        f'viewBox="0 0 {total} {HEIGHT}" role="img" aria-label="{_xml(title)}">'
        f"<title>{_xml(title)}</title>"
        f'<rect width="{total}" height="{HEIGHT}" rx="3" fill="{colour}"/>'
        # The label half: a rectangle with the badge's left corners rounded.
        f'<path d="M3 0H{left}V{HEIGHT}H3A3 3 0 0 1 0 {HEIGHT - 3}V3A3 3 0 0 1 3 0Z" '
        f'fill="{LABEL_COLOUR}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="{FONT}" font-size="11">'
        f"{_text(left / 2, label_text, label)}"
        f"{_text(left + right / 2, value_text, value)}"
        "</g></svg>"
    )
