"""What the checks read from a page's HTML: scripts (with their ``integrity``), stylesheets,
iframes, links with their text, forms, the title, the generator, and the visible text.

Parsed with the standard library's tolerant HTML tokenizer, as browsers tolerate broken
markup; the counts are bounded so a hostile page cannot make the scanner hold more than
``MAX_ELEMENTS`` of each kind.

>>> m = parse_markup('<title>Hi</title><script src="https://cdn.example/x.js" '
...                  'integrity="sha384-abc"></script><a href="/privacy">Privacy policy</a>')
>>> m.title, m.scripts[0].src, m.scripts[0].integrity, m.links[0].href
('Hi', 'https://cdn.example/x.js', 'sha384-abc', '/privacy')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final

MAX_ELEMENTS: Final = 2000
MAX_TEXT_CHARS: Final = 200_000


@dataclass(frozen=True)
class Script:
    src: str | None  # None: an inline script
    integrity: str | None
    crossorigin: str | None
    type: str | None


@dataclass(frozen=True)
class Stylesheet:
    href: str
    integrity: str | None


@dataclass(frozen=True)
class Link:
    href: str
    text: str
    rel: str | None


@dataclass(frozen=True)
class Markup:
    title: str
    generator: str | None
    scripts: tuple[Script, ...]
    stylesheets: tuple[Stylesheet, ...]
    iframes: tuple[str, ...]
    links: tuple[Link, ...]
    forms: tuple[str, ...]  # their actions ("" for none)
    text: str
    meta_refresh: str | None
    dropped: int  # elements beyond MAX_ELEMENTS, not kept


@dataclass
class _Parser(HTMLParser):
    title: list[str] = field(default_factory=list)
    generator: str | None = None
    scripts: list[Script] = field(default_factory=list)
    stylesheets: list[Stylesheet] = field(default_factory=list)
    iframes: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    meta_refresh: str | None = None
    dropped: int = 0
    _text_chars: int = 0
    _in: str | None = None  # "title", "script", "style" or "a"
    _anchor: dict[str, str | None] | None = None
    _anchor_text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def _keep(self, bucket: list[object]) -> bool:
        if len(bucket) >= MAX_ELEMENTS:
            self.dropped += 1
            return False
        return True

    def handle_starttag(  # noqa: PLR0912 - one branch per element the checks read
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        a = {k.lower(): v for k, v in attrs}
        self._gap()
        if tag == "script":
            self._in = "script"
            if self._keep(self.scripts):  # type: ignore[arg-type]
                src = (a.get("src") or "").strip() or None
                self.scripts.append(
                    Script(src, a.get("integrity"), a.get("crossorigin"), a.get("type"))
                )
        elif tag == "style":
            self._in = "style"
        elif tag == "title":
            self._in = "title"
        elif tag == "link" and "stylesheet" in (a.get("rel") or "").lower().split():
            if a.get("href") and self._keep(self.stylesheets):  # type: ignore[arg-type]
                self.stylesheets.append(Stylesheet(str(a["href"]).strip(), a.get("integrity")))
        elif tag in ("iframe", "frame"):
            if self._keep(self.iframes):  # type: ignore[arg-type]
                self.iframes.append((a.get("src") or "").strip())
        elif tag == "a" and a.get("href"):
            self._in = "a"
            self._anchor = a
            self._anchor_text = []
        elif tag == "form":
            if self._keep(self.forms):  # type: ignore[arg-type]
                self.forms.append((a.get("action") or "").strip())
        elif tag == "meta":
            name = (a.get("name") or "").lower()
            if name == "generator" and a.get("content"):
                self.generator = str(a["content"]).strip()[:200]
            if (a.get("http-equiv") or "").lower() == "refresh" and a.get("content"):
                self.meta_refresh = str(a["content"]).strip()[:500]

    def handle_endtag(self, tag: str) -> None:
        self._gap()
        if tag == "a" and self._anchor is not None:
            if self._keep(self.links):  # type: ignore[arg-type]
                text = " ".join("".join(self._anchor_text).split())[:200]
                anchor = self._anchor
                self.links.append(Link(str(anchor["href"]).strip(), text, anchor.get("rel")))
            self._anchor = None
        if tag in ("script", "style", "title", "a"):
            self._in = None

    def _gap(self) -> None:
        """Elements separate words: ``</title><h1>x`` must not glue the title to ``x``."""
        if self.text and self.text[-1] != " ":
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title.append(data)
        elif self._in in ("script", "style"):
            return
        if self._anchor is not None:
            self._anchor_text.append(data)
        if self._text_chars < MAX_TEXT_CHARS:
            piece = data[: MAX_TEXT_CHARS - self._text_chars]
            self.text.append(piece)
            self._text_chars += len(piece)


def parse_markup(html: str) -> Markup:
    """Read the elements the checks need from ``html`` (never raises on broken markup)."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    if parser._anchor is not None and len(parser.links) < MAX_ELEMENTS:
        anchor = parser._anchor
        text = " ".join("".join(parser._anchor_text).split())[:200]
        parser.links.append(Link(str(anchor["href"]).strip(), text, anchor.get("rel")))
    return Markup(
        title=" ".join("".join(parser.title).split())[:500],
        generator=parser.generator,
        scripts=tuple(parser.scripts),
        stylesheets=tuple(parser.stylesheets),
        iframes=tuple(parser.iframes),
        links=tuple(parser.links),
        forms=tuple(parser.forms),
        text=" ".join("".join(parser.text).split()),
        meta_refresh=parser.meta_refresh,
        dropped=parser.dropped,
    )
