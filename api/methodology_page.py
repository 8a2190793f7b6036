"""The public methodology page: the Markdown that :mod:`scoring.methodology` generates from
the scoring table, rendered to one standalone HTML page (no scripts, no external resources).

Raw HTML in the Markdown is escaped, not passed through (``html=False``): the page is built
from our own table, but a page that cannot carry markup cannot be made to carry a script.
"""

from __future__ import annotations

from functools import cache
from html import escape
from typing import Final

from markdown_it import MarkdownIt

from scoring.methodology import render_markdown
from scoring.trust import METHODOLOGY, Methodology

_STYLE: Final = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #c8c8c8; padding: .3rem .6rem; vertical-align: top;
         text-align: left; }
th { background: #f1f1f1; }
code { background: #f4f4f4; padding: 0 .2rem; }
"""


def methodology_html(table: Methodology = METHODOLOGY) -> str:
    """The page for ``table`` (the same table always renders to the same page)."""
    if table is METHODOLOGY:
        return _current()
    return _render(table)


@cache
def _current() -> str:
    return _render(METHODOLOGY)


def _render(table: Methodology) -> str:
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(render_markdown(table))
    title = escape(f"TrustWatch rating methodology {table.version}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
