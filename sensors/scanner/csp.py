"""Content-Security-Policy: a parser that follows CSP Level 3 and the Observatory-v6 analysis
of what it parsed.

Parsing follows the specification's algorithms. *Parse a response's CSPs* splits each
``Content-Security-Policy`` header value on ``,`` into serialized policies (several headers
are several policies, all enforced); *parse a serialized CSP* splits a policy on ``;`` into
directives, strips ASCII whitespace, skips empty and non-ASCII tokens, lowercases the
directive name, keeps the first occurrence of a name and ignores later ones (recorded in
``duplicates``), and splits the value on ASCII whitespace. Each value of a source-list
directive is classified as a keyword (``'self'``), a nonce or hash, a scheme (``https:``), a
host (with an optional scheme, ``*.`` wildcard, port and path), or invalid.

>>> policy = parse_policy("default-src 'self'; Script-Src 'nonce-abc' https://*.cdn.example:443/js/")
>>> [d.name for d in policy.directives]
['default-src', 'script-src']
>>> [(s.kind.value, s.host) for s in policy.sources("script-src")]
[('nonce', None), ('host', '*.cdn.example')]

:func:`analyze_csp` then applies the Observatory-v6 test to the parsed policies; see its
docstring for how several policies combine.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CspAnalysis",
    "Directive",
    "Policy",
    "Source",
    "SourceKind",
    "analyze_csp",
    "parse_policies",
    "parse_policy",
]

_ASCII_WS: Final = "\t\n\f\r "
_SPLIT_WS: Final = re.compile(r"[\t\n\f\r ]+")
_DIRECTIVE_NAME: Final = re.compile(r"^[a-z0-9-]+$")
_KEYWORDS: Final = frozenset(
    {
        "'self'",
        "'none'",
        "'unsafe-inline'",
        "'unsafe-eval'",
        "'strict-dynamic'",
        "'unsafe-hashes'",
        "'report-sample'",
        "'unsafe-allow-redirects'",
        "'wasm-unsafe-eval'",
        "'inline-speculation-rules'",
    }
)
_BASE64: Final = r"[A-Za-z0-9+/\-_]+={0,2}"
_NONCE: Final = re.compile(rf"^'nonce-{_BASE64}'$", re.IGNORECASE)
_HASH: Final = re.compile(rf"^'(sha256|sha384|sha512)-{_BASE64}'$", re.IGNORECASE)
_SCHEME: Final = re.compile(r"^([a-z][a-z0-9+\-.]*):$", re.IGNORECASE)
_HOST: Final = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+\-.]*)://)?"
    r"(?P<host>\*|(?:\*\.)?[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.?)"
    r"(?::(?P<port>[0-9]+|\*))?"
    r"(?P<path>/[^;,]*)?$",
    re.IGNORECASE,
)
# Directives whose value is a source list (CSP3 and the fetch directives it names).
_SOURCE_LIST_EXTRA: Final = frozenset({"base-uri", "form-action", "frame-ancestors"})
# Directives a <meta http-equiv> policy may not set (CSP3 §3.3): they are dropped from it.
_NOT_IN_META: Final = frozenset({"frame-ancestors", "report-uri", "sandbox"})
# The Observatory lets these repeat; any other repeat makes the policy invalid for it.
_DUPLICATES_ALLOWED: Final = frozenset({"report-uri", "report-to"})
# The Observatory rejects a policy shorter than "img-src" less one character.
_SHORTEST_POLICY: Final = len("img-src") - 1


class SourceKind(enum.StrEnum):
    KEYWORD = "keyword"
    NONCE = "nonce"
    HASH = "hash"
    SCHEME = "scheme"
    HOST = "host"
    INVALID = "invalid"


@dataclass(frozen=True)
class Source:
    """One source expression: ``text`` as written, ``value`` lowercased (what matching
    compares), and for hosts their parts."""

    text: str
    kind: SourceKind
    scheme: str | None = None
    host: str | None = None
    port: str | None = None
    path: str | None = None

    @property
    def value(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class Directive:
    name: str
    values: tuple[str, ...]

    @property
    def is_source_list(self) -> bool:
        return self.name.endswith("-src") or self.name in _SOURCE_LIST_EXTRA


@dataclass(frozen=True)
class Policy:
    """One serialized policy, parsed. ``duplicates`` lists directive names seen again (the
    later occurrences are ignored); ``unknown`` lists names that are not valid tokens."""

    directives: tuple[Directive, ...]
    duplicates: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    serialized: str = ""

    def get(self, name: str) -> Directive | None:
        return next((d for d in self.directives if d.name == name), None)

    def sources(self, name: str) -> tuple[Source, ...]:
        """The classified sources of ``name`` (empty when it is absent; ``'none'`` when it
        is present with an empty value, as the specification reads an empty source list)."""
        directive = self.get(name)
        if directive is None:
            return ()
        return tuple(classify(v) for v in directive.values) or (classify("'none'"),)

    def without(self, names: Iterable[str]) -> Policy:
        dropped = frozenset(names)
        return Policy(
            tuple(d for d in self.directives if d.name not in dropped),
            self.duplicates,
            self.unknown,
            self.serialized,
        )


def classify(text: str) -> Source:
    """Classify one source expression per the CSP3 grammar.

    >>> classify("'SELF'").kind.value, classify("data:").scheme, classify("http://a.example:8080/x").port
    ('keyword', 'data', '8080')
    >>> classify("'nonce-'").kind.value
    'invalid'
    """
    lowered = text.lower()
    if lowered in _KEYWORDS:
        return Source(text, SourceKind.KEYWORD)
    if _NONCE.match(text):
        return Source(text, SourceKind.NONCE)
    if _HASH.match(text):
        return Source(text, SourceKind.HASH)
    if scheme := _SCHEME.match(text):
        return Source(text, SourceKind.SCHEME, scheme=scheme.group(1).lower())
    if host := _HOST.match(text):
        return Source(
            text,
            SourceKind.HOST,
            scheme=(host.group("scheme") or "").lower() or None,
            host=host.group("host").lower(),
            port=host.group("port"),
            path=host.group("path"),
        )
    return Source(text, SourceKind.INVALID)


def parse_policy(serialized: str) -> Policy:
    """Parse one serialized policy (CSP3 "parse a serialized CSP")."""
    directives: list[Directive] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    unknown: list[str] = []
    for raw in serialized.split(";"):
        token = raw.strip(_ASCII_WS)
        if not token or not token.isascii():
            continue
        name, *values = _SPLIT_WS.split(token)
        name = name.lower()
        if name in seen:
            duplicates.append(name)
            continue
        seen.add(name)
        if not _DIRECTIVE_NAME.match(name):
            unknown.append(name)
        directives.append(Directive(name, tuple(values)))
    return Policy(tuple(directives), tuple(duplicates), tuple(unknown), serialized)


def parse_policies(header_values: Iterable[str]) -> tuple[Policy, ...]:
    """Every policy of a response's header values (each split on ``,``; empty ones skipped).

    >>> len(parse_policies(["default-src 'self', img-src *", "script-src 'none'"]))
    3
    """
    return tuple(
        parse_policy(piece)
        for value in header_values
        for piece in value.split(",")
        if piece.strip(_ASCII_WS)
    )


# --- the Observatory-v6 analysis ------------------------------------------------------------

_BROAD: Final = frozenset(
    {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
)
_UNSAFE_INLINE: Final = frozenset({"'unsafe-inline'", "data:"})
_BROAD_OR_INLINE: Final = _BROAD | _UNSAFE_INLINE
_PASSIVE: Final = ("img-src", "media-src")
_NONCE_HASH_PREFIXES: Final = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


@dataclass(frozen=True)
class CspAnalysis:
    """The Observatory's reading of a response's policies.

    ``result`` is the Observatory expectation (``csp-implemented-with-no-unsafe``, ...);
    the flags say what the enforced policies, taken together, allow.
    """

    result: str
    policies: int = 0
    problems: tuple[str, ...] = ()
    unsafe_inline: bool = False
    insecure_scheme_active: bool = False
    unsafe_eval: bool = False
    insecure_scheme_passive: bool = False
    unsafe_inline_style: bool = False
    default_none: bool = False
    strict_dynamic: bool = False
    frame_ancestors: bool = False
    anti_clickjacking: bool = False
    directives: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Flags:
    unsafe_inline: bool
    insecure_scheme_active: bool
    unsafe_eval: bool
    insecure_scheme_passive: bool
    unsafe_inline_style: bool
    default_none: bool
    strict_dynamic: bool
    strict_dynamic_invalid: bool


def _values(policy: Policy, *names: str) -> set[str] | None:
    """The lowercased sources of the first of ``names`` the policy has (the fallback chain),
    or None when it has none of them (the load is unrestricted)."""
    for name in names:
        if policy.get(name) is not None:
            return {s.value for s in policy.sources(name)}
    return None


def _flags(policy: Policy, https: bool) -> _Flags:
    script = _values(policy, "script-src", "default-src") or {"*"}
    objects = _values(policy, "object-src", "default-src") or {"*"}
    style = _values(policy, "style-src", "default-src") or {"*"}
    # A nonce or hash makes browsers ignore 'unsafe-inline' (kept for older ones).
    for sources in (script, style):
        if any(s.startswith(_NONCE_HASH_PREFIXES) for s in sources):
            sources.discard("'unsafe-inline'")
    strict_dynamic = invalid = False
    if "'strict-dynamic'" in script:
        if any(s.startswith(_NONCE_HASH_PREFIXES) for s in script):
            # With 'strict-dynamic' browsers ignore host and scheme sources and 'self'.
            script = {
                s
                for s in script
                if not (s.startswith(tuple(_BROAD)) or s in ("'self'", "'unsafe-inline'"))
            }
            strict_dynamic = True
        else:
            invalid = True
    active = [
        s.value
        for d in policy.directives
        if d.name not in _PASSIVE and d.name != "script-src"
        for s in policy.sources(d.name)
    ] + sorted(script)
    passive = [v for name in _PASSIVE for v in (_values(policy, name, "default-src") or ())]
    insecure = ("http:", "ftp:")
    default = _values(policy, "default-src")
    return _Flags(
        unsafe_inline=bool(script & _BROAD_OR_INLINE or objects & _BROAD),
        insecure_scheme_active=https and any(s.startswith(insecure) for s in active),
        unsafe_eval="'unsafe-eval'" in script | style,
        insecure_scheme_passive=https and any(s.startswith(insecure) for s in passive),
        unsafe_inline_style=bool(style & _BROAD_OR_INLINE),
        default_none=default == {"'none'"},
        strict_dynamic=strict_dynamic,
        strict_dynamic_invalid=invalid,
    )


def _problems(header_values: Sequence[str], meta_values: Sequence[str]) -> list[str]:
    """Why the Observatory would call the policies unparsable (empty list: parsable)."""
    problems = []
    for value in [*header_values, *meta_values]:
        for piece in value.split(","):
            cleaned = piece.replace("\r", "").replace("\n", "").strip()
            if len(cleaned) < _SHORTEST_POLICY:
                problems.append(f"policy too short to be one: {cleaned[:80]!r}")
    for policy in parse_policies([*header_values, *meta_values]):
        for name in policy.duplicates:
            if name not in _DUPLICATES_ALLOWED:
                problems.append(f"directive {name} repeated in one policy")
    return problems


def analyze_csp(
    header_values: Sequence[str],
    meta_values: Sequence[str] = (),
    report_only_values: Sequence[str] = (),
    *,
    https: bool = True,
) -> CspAnalysis:
    """Apply the Observatory-v6 CSP test to a response's policies.

    ``header_values`` are the ``Content-Security-Policy`` headers, ``meta_values`` the
    ``<meta http-equiv>`` policies (which may not set frame-ancestors, report-uri or sandbox),
    ``report_only_values`` the ``Content-Security-Policy-Report-Only`` headers. As the
    Observatory does, a repeated directive (other than report-uri/report-to), a policy shorter
    than six characters, or 'strict-dynamic' without a nonce or hash make the whole header
    invalid. Several policies are each enforced, so a load is allowed only when every policy
    allows it: a weakness counts only when every policy has it, and ``default-src 'none'``
    when any policy sets it. (The Observatory intersects source lists instead; the outcome is
    the same for the usual single policy.)

    >>> analyze_csp(["default-src 'none'; img-src 'self'"]).result
    'csp-implemented-with-no-unsafe-default-src-none'
    >>> analyze_csp([], report_only_values=["default-src 'self'"]).result
    'csp-not-implemented-but-reporting-enabled'
    """
    headers = parse_policies(header_values)
    metas = tuple(p.without(_NOT_IN_META) for p in parse_policies(meta_values))
    enforced = tuple(p for p in (*headers, *metas) if p.directives)
    names = tuple(sorted({d.name for p in enforced for d in p.directives}))
    problems = _problems(header_values, meta_values)
    if not enforced and not problems:
        if any(v.strip() for v in report_only_values):
            return CspAnalysis("csp-not-implemented-but-reporting-enabled")
        return CspAnalysis("csp-not-implemented")
    flags = [_flags(p, https) for p in enforced]
    problems += [
        "'strict-dynamic' without a nonce or hash" for f in flags if f.strict_dynamic_invalid
    ]
    frame_ancestors = any(p.get("frame-ancestors") is not None for p in headers)
    anti_clickjacking = any(
        not ({s.value for s in p.sources("frame-ancestors")} & _BROAD)
        for p in headers
        if p.get("frame-ancestors") is not None
    )
    if problems:
        return CspAnalysis(
            "csp-header-invalid", len(enforced), tuple(problems[:20]), directives=names
        )
    combined = {
        name: all(getattr(f, name) for f in flags)
        for name in (
            "unsafe_inline",
            "insecure_scheme_active",
            "unsafe_eval",
            "insecure_scheme_passive",
            "unsafe_inline_style",
        )
    }
    default_none = any(f.default_none for f in flags)
    # The Observatory's order: the first weakness found names the result.
    order = (
        ("unsafe_inline", "csp-implemented-with-unsafe-inline"),
        ("insecure_scheme_active", "csp-implemented-with-insecure-scheme"),
        ("unsafe_eval", "csp-implemented-with-unsafe-eval"),
        ("insecure_scheme_passive", "csp-implemented-with-insecure-scheme-in-passive-content-only"),
        ("unsafe_inline_style", "csp-implemented-with-unsafe-inline-in-style-src-only"),
    )
    result = next((key for flag, key in order if combined[flag]), None)
    if result is None:
        result = (
            "csp-implemented-with-no-unsafe-default-src-none"
            if default_none
            else "csp-implemented-with-no-unsafe"
        )
    return CspAnalysis(
        result,
        len(enforced),
        (),
        unsafe_inline=combined["unsafe_inline"],
        insecure_scheme_active=combined["insecure_scheme_active"],
        unsafe_eval=combined["unsafe_eval"],
        insecure_scheme_passive=combined["insecure_scheme_passive"],
        unsafe_inline_style=combined["unsafe_inline_style"],
        default_none=default_none,
        strict_dynamic=any(f.strict_dynamic for f in flags),
        frame_ancestors=frame_ancestors,
        anti_clickjacking=anti_clickjacking,
        directives=names,
    )
