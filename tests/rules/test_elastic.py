"""Rules as Elasticsearch queries: every feature the in-stream engine evaluates, in ES|QL and in
Lucene or refused with the reason; the built-in pack's queries, whole; correlations; Kibana's
rule form. Without a cluster the queries are checked for syntax (Lucene by ``luqum``'s parser,
ES|QL by balance); with ``TRUSTWATCH_TEST_ES_URL`` they run, and must find what the in-stream
engine finds."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from luqum.parser import parser as lucene_parser
from luqum.tree import AndOperation, Item, Not, OrOperation, Prohibit, UnknownOperation
from sigma.rule import SigmaRule

from api.pipeline import BUILTIN_RULES
from rules.correlation import Correlation
from rules.elastic import (
    BUCKET_NOTE,
    DISTINCT_NOTE,
    ElasticExport,
    ExportedRule,
    Language,
    as_text,
    correlation_query,
    export_rules,
    index_patterns,
    sigma_rules,
)
from rules.elastic_fields import FIELD_TYPES, IP, KEYWORD, LONG, OBJECT, FieldType
from rules.elastic_query import Translation
from rules.errors import RuleProblem, UnsupportedRuleError
from rules.esql import esql_condition
from rules.kibana import kibana_rule
from rules.loader import load_rules
from rules.lucene import TEXT_NUMBER_NOTE, lucene_query
from rules.lucene_regex import ASCII_NOTE, to_lucene
from sensors.wire import dump_record, validate_record

PACK = load_rules([BUILTIN_RULES])
ES_URL = os.environ.get("TRUSTWATCH_TEST_ES_URL")


def sigma(detection: str) -> SigmaRule:
    if "condition:" not in detection:
        detection += "\ncondition: s"
    lines = "\n".join("  " + line for line in detection.splitlines())
    return SigmaRule.from_yaml(f"title: t\nlogsource: {{category: network}}\ndetection:\n{lines}")


def translated(detection: str, fields: dict[str, FieldType] | None = None) -> tuple[str, str]:
    """ES|QL and Lucene, each checked for syntax, or ``unsupported: <reason>``."""
    rule = sigma(detection)
    out = []
    for translate, check in ((esql_condition, check_esql), (lucene_query, check_lucene)):
        try:
            text = translate(rule, fields or FIELD_TYPES).text
        except UnsupportedRuleError as exc:
            out.append(f"unsupported: {exc}")
        else:
            check(text)
            out.append(text)
    return out[0], out[1]


def check_esql(query: str) -> None:
    """Balanced parentheses and quotes, no line break inside a string, known commands."""
    depth, at = 0, 0
    while at < len(query):
        char = query[at]
        if char == '"':
            at += 1
            while query[at] != '"':
                assert query[at] not in "\r\n", query
                at += 2 if query[at] == "\\" else 1
        elif char == "`":
            at = query.index("`", at + 1)
        elif char in "()":
            depth += 1 if char == "(" else -1
            assert depth >= 0, query
        at += 1
    assert 0 == depth, query
    lines = query.splitlines()
    commands = [line.split()[1] for line in lines[1:]]
    if lines[0].startswith("FROM "):
        assert set(commands) <= {"WHERE", "STATS", "EVAL"}, query


def check_lucene(query: str) -> None:
    """It parses, and no group mixes AND with OR, or puts NOT under OR: ``query_string`` reads
    those otherwise than Boolean logic does."""
    stack: list[Item] = [lucene_parser.parse(query)]
    while stack:
        node = stack.pop()
        assert not isinstance(node, UnknownOperation), query
        if isinstance(node, AndOperation | OrOperation):
            other = OrOperation if isinstance(node, AndOperation) else AndOperation
            for child in node.children:
                assert not isinstance(child, other), query
                if isinstance(node, OrOperation):
                    assert not isinstance(child, Not | Prohibit), query
        stack.extend(node.children)


@pytest.mark.parametrize(
    ("detection", "esql", "lucene"),
    [
        # strings compare case-insensitively; a caseless value needs no folding
        (
            "s: {dns.question.name: Example.ORG}",
            'TO_LOWER(dns.question.name) == "example.org"',
            "dns.question.name:/[eE][xX][aA][mM][pP][lL][eE]\\.[oO][rR][gG]/",
        ),
        (
            "s: {dns.question.name|cased: Example.ORG}",
            'dns.question.name == "Example.ORG"',
            'dns.question.name:"Example.ORG"',
        ),
        ("s: {http.version: '1.1'}", 'http.version == "1.1"', 'http.version:"1.1"'),
        # numbers, also written as text; text that is no number never matches a number
        ("s: {destination.port: 445}", "destination.port == 445", "destination.port:445"),
        ("s: {destination.port: '445'}", "destination.port == 445", 'destination.port:"445"'),
        ("s: {destination.port: '0445'}", 'TO_STRING(destination.port) == "0445"', "NOT *:*"),
        ("s: {source.bytes: 1.5}", "source.bytes == 1.5", "source.bytes:1.5"),
        ("s: {destination.port: -1}", "destination.port == -1", 'destination.port:"-1"'),
        # lists: any value, one IN
        (
            "a: {destination.port: [1, 2]}\nb: {destination.port: 3}\ncondition: a or b",
            "destination.port IN (1, 2, 3)",
            "destination.port:(1 OR 2 OR 3)",
        ),
        (
            "s: {url.domain: [a.example, B.example, '*.test']}",
            'TO_LOWER(url.domain) IN ("a.example", "b.example") OR TO_LOWER(url.domain) LIKE'
            ' "*.test"',
            "url.domain:(/[aA]\\.[eE][xX][aA][mM][pP][lL][eE]/ OR /[bB]\\.[eE][xX][aA][mM][pP]"
            "[lL][eE]/ OR /.*\\.[tT][eE][sS][tT]/)",
        ),
        # a field the wire format closes: the allowed values that match, exactly
        (
            "s: {network.transport: [TCP, udp, sctp]}",
            'network.transport IN ("tcp", "udp", "sctp")',
            'network.transport:("tcp" OR "udp" OR "sctp")',
        ),
        (
            "s: {flow.state: 'r*'}",
            'flow.state IN ("REJ", "RSTO", "RSTOS0", "RSTR", "RSTRH")',
            'flow.state:("REJ" OR "RSTO" OR "RSTOS0" OR "RSTR" OR "RSTRH")',
        ),
        ("s: {flow.state: nothing}", "false", "NOT *:*"),
        (
            "s: {network.transport|re|i: '^(TCP|udp)$'}",
            'network.transport IN ("tcp", "udp")',
            'network.transport:("tcp" OR "udp")',
        ),
        # booleans are the text true or false
        ("s: {flow.state: true}", "false", "NOT *:*"),
        (
            "s: {url.domain: true}",
            'TO_LOWER(url.domain) == "true"',
            "url.domain:/[tT][rR][uU][eE]/",
        ),
        # wildcards, contains, startswith, endswith, all
        (
            "s: {user_agent.original: 'Mozilla/?.0 (*)'}",
            'TO_LOWER(user_agent.original) LIKE "mozilla/?.0 (*)"',
            "user_agent.original:/[mM][oO][zZ][iI][lL][lL][aA]\\/.\\.0\\ \\(.*\\)/",
        ),
        (
            "s: {url.original|startswith: '/admin'}",
            'TO_LOWER(url.original) LIKE "/admin*"',
            "url.original:/\\/[aA][dD][mM][iI][nN].*/",
        ),
        (
            "s: {url.original|endswith: '.PHP'}",
            'TO_LOWER(url.original) LIKE "*.php"',
            "url.original:/.*\\.[pP][hH][pP]/",
        ),
        (
            "s: {url.original|contains|all: [wp-login, redirect]}",
            'TO_LOWER(url.original) LIKE "*wp-login*" AND TO_LOWER(url.original) LIKE "*redirect*"',
            "url.original:/.*[wW][pP]\\-[lL][oO][gG][iI][nN].*/ AND url.original:/.*[rR][eE][dD]"
            "[iI][rR][eE][cC][tT].*/",
        ),
        (
            "s: {tls.client.server_name|cased|startswith: Mail.}",
            'tls.client.server_name LIKE "Mail.*"',
            "tls.client.server_name:/Mail\\..*/",
        ),
        # escaping: quotes, backslashes, escaped wildcards, every Lucene reserved character
        (
            "s: {url.original|contains: 'a*b?c\\\\d\"e'}",
            'TO_LOWER(url.original) LIKE "*a*b?c\\\\\\\\d\\"e*"',
            'url.original:/.*[aA].*[bB].[cC]\\\\[dD]\\"[eE].*/',
        ),
        (
            "s: {url.original: 'a\\*b'}",
            'TO_LOWER(url.original) == "a*b"',
            "url.original:/[aA]\\*[bB]/",
        ),
        (
            "s: {url.original|contains: '+-=&&||><!(){}[]^~:/ '}",
            'url.original LIKE "*+-=&&||><!(){}[]^~:/ *"',
            "url.original:/.*\\+\\-\\=\\&\\&\\|\\|\\>\\<\\!\\(\\)\\{\\}\\[\\]\\^\\~\\:\\/\\ .*/",
        ),
        (
            "s: {url.original: ''}",
            'url.original == ""',
            "unsupported: an empty value for url.original: Lucene has no empty term",
        ),
        # regular expressions: a search in Python, a whole-value match in Lucene
        (
            "s: {dns.question.name|re: '^[a-z0-9]{16}\\.'}",
            'dns.question.name RLIKE "[a-z0-9]{16}\\\\..*"',
            "dns.question.name:/[a-z0-9]{16}\\..*/",
        ),
        (
            "s: {dns.question.name|re|i: 'tunnel\\.(com|net)$'}",
            'dns.question.name RLIKE ".*[tT][uU][nN][nN][eE][lL]\\\\.([cC][oO][mM]|[nN][eE][tT])'
            '(\\n)?"',
            "dns.question.name:/.*[tT][uU][nN][nN][eE][lL]\\.([cC][oO][mM]|[nN][eE][tT])(\n)?/",
        ),
        (
            "s: {dns.question.name|re|s: 'a.b'}",
            'dns.question.name RLIKE ".*a.b.*"',
            "dns.question.name:/.*a.b.*/",
        ),
        (
            "s: {destination.port|re: '^44'}",
            'TO_STRING(destination.port) RLIKE "44.*"',
            "unsupported: re on destination.port: Lucene has regular expressions on text",
        ),
        # networks and addresses
        (
            "s: {source.ip|cidr: [10.0.0.0/8, 'fc00::/7']}",
            'CIDR_MATCH(source.ip, "10.0.0.0/8", "fc00::/7")',
            'source.ip:("10.0.0.0/8" OR "fc00::/7")',
        ),
        (
            "s: {network.community_id|cidr: 10.0.0.0/8}",
            'CIDR_MATCH(TO_IP(network.community_id), "10.0.0.0/8")',
            "unsupported: cidr on network.community_id: Lucene matches networks on ip fields",
        ),
        ("s: {destination.port|cidr: 10.0.0.0/8}", "false", "NOT *:*"),
        ("s: {source.ip: 10.1.2.3}", 'source.ip == TO_IP("10.1.2.3")', 'source.ip:"10.1.2.3"'),
        (
            "s: {destination.ip: '2001:DB8::25'}",
            'destination.ip == TO_IP("2001:db8::25")',
            'destination.ip:"2001:db8::25"',
        ),
        (
            "s: {destination.ip|cased: '2001:DB8::25'}",
            'TO_STRING(destination.ip) == "2001:DB8::25"',
            "NOT *:*",
        ),
        (
            "s: {source.ip: '10.1.*'}",
            'TO_STRING(source.ip) LIKE "10.1.*"',
            "unsupported: wildcards on source.ip: Lucene has them on text only",
        ),
        ("s: {source.ip: 445}", "false", "NOT *:*"),
        # comparisons
        ("s: {source.bytes|gt: 1000}", "source.bytes > 1000", "source.bytes:{1000 TO *]"),
        ("s: {source.bytes|gte: 1000}", "source.bytes >= 1000", "source.bytes:[1000 TO *]"),
        ("s: {source.bytes|lt: 10}", "source.bytes < 10", "source.bytes:[* TO 10}"),
        ("s: {source.bytes|lte: 10}", "source.bytes <= 10", "source.bytes:[* TO 10]"),
        (
            "s: {network.vlan.id|gt: 100}",
            "TO_DOUBLE(network.vlan.id) > 100",
            "unsupported: network.vlan.id is text: a Lucene range would compare letters",
        ),
        # null, exists, field references, dates
        (
            "s: {tls.client.server_name: null}",
            "tls.client.server_name IS NULL",
            "NOT _exists_:tls.client.server_name",
        ),
        (
            "s: {http.request.method|exists: true}",
            "http.request.method IS NOT NULL",
            "_exists_:http.request.method",
        ),
        (
            "s: {http.request.method|exists: false}",
            "http.request.method IS NULL",
            "NOT _exists_:http.request.method",
        ),
        (
            "s: {source.ip|fieldref: destination.ip}",
            "source.ip == destination.ip",
            "unsupported: fieldref: Lucene cannot compare two fields",
        ),
        (
            "s: {source.ip|fieldref: destination.port}",
            "unsupported: fieldref: source.ip and destination.port differ in type",
            "unsupported: fieldref: Lucene cannot compare two fields",
        ),
        (
            "s: {event.start: '2026*'}",
            "unsupported: event.start is of type date: only null and exists",
            "unsupported: event.start is of type date: only null and exists",
        ),
        ("s: {event.start: null}", "event.start IS NULL", "NOT _exists_:event.start"),
        # conditions: not (a missing field is no match, also under not), 1 of, all of
        (
            "a: {destination.port: 445}\nb: {flow.state: SF}\ncondition: a and not b",
            'destination.port == 445 AND NOT COALESCE(flow.state == "SF", false)',
            'destination.port:445 AND (NOT flow.state:"SF")',
        ),
        (
            "a: {destination.port: 445}\nb: {flow.state: SF}\ncondition: not (a or b)",
            'NOT COALESCE(destination.port == 445 OR flow.state == "SF", false)',
            'NOT (destination.port:445 OR flow.state:"SF")',
        ),
        (
            "a: {tls.client.server_name: null}\ncondition: not a",
            "NOT (tls.client.server_name IS NULL)",
            "NOT (NOT _exists_:tls.client.server_name)",
        ),
        (
            "a1: {destination.port: 1}\na2: {url.domain: x}\ncondition: 1 of a*",
            'destination.port == 1 OR TO_LOWER(url.domain) == "x"',
            "destination.port:1 OR url.domain:/[xX]/",
        ),
        (
            "a1: {destination.port: 1}\na2: {url.domain: x}\ncondition: all of a* or not 1 of them",
            '(destination.port == 1 AND TO_LOWER(url.domain) == "x") OR NOT COALESCE('
            'destination.port == 1 OR TO_LOWER(url.domain) == "x", false)',
            "(destination.port:1 AND url.domain:/[xX]/) OR (NOT (destination.port:1 OR "
            "url.domain:/[xX]/))",
        ),
        (
            "a: {flow.state: nothing}\nb: {source.port: 5}\ncondition: a or b",
            "source.port == 5",
            "source.port:5",
        ),
        ("a: {flow.state: nothing}\nb: {source.port: 5}\ncondition: a and b", "false", "NOT *:*"),
        # modifiers the engine does not evaluate as Sigma means them
        (
            "s: {event.start|minute: 5}",
            "unsupported: event.start is of type date: only null and exists",
            "unsupported: event.start is of type date: only null and exists",
        ),
        (
            "s: {source.port|minute: 5}",
            "unsupported: the minute/hour/day/week/month/year modifiers",
            "unsupported: the minute/hour/day/week/month/year modifiers",
        ),
        (
            "s: {source.ip|fieldref|startswith: destination.ip}",
            "unsupported: fieldref with startswith or endswith",
            "unsupported: fieldref: Lucene cannot compare two fields",
        ),
    ],
)
def test_detection(detection: str, esql: str, lucene: str) -> None:
    assert (esql, lucene) == translated(detection)


KEYWORD_FIELDS = {
    "url.original": FieldType(KEYWORD),
    "flow.state": FieldType(KEYWORD, frozenset({"SF", "REJ"})),
    "source.port": FieldType(LONG),
    "source.ip": FieldType(IP),
    "checks": FieldType(OBJECT),
}


@pytest.mark.parametrize(
    ("detection", "esql", "lucene"),
    [
        # a value without a field: any field that holds text (numbers do not; an address
        # cannot hold a dollar sign)
        (
            "k: ['*${jndi:*', 'sf']\ncondition: k",
            'TO_LOWER(url.original) LIKE "*${jndi:*" OR flow.state == "SF" OR '
            'TO_LOWER(url.original) == "sf"',
            'url.original:/.*\\$\\{[jJ][nN][dD][iI]\\:.*/ OR flow.state:"SF" OR '
            "url.original:/[sS][fF]/",
        ),
        (
            "k: ['*10.0*']\ncondition: k",
            "unsupported: keyword *10.0* could match the text of source.ip, which "
            "Elasticsearch keeps as ip: name the fields",
            "unsupported: keyword *10.0* could match the text of source.ip, which "
            "Elasticsearch keeps as ip: name the fields",
        ),
    ],
)
def test_keywords(detection: str, esql: str, lucene: str) -> None:
    assert (esql, lucene) == translated(detection, KEYWORD_FIELDS)


def test_notes_say_what_a_query_approximates() -> None:
    assert (
        Translation("TO_DOUBLE(network.iana_number) == 6"),
        Translation('network.iana_number:"6"', (TEXT_NUMBER_NOTE,)),
        Translation('url.domain RLIKE ".*[0-9]+x.*"', (ASCII_NOTE,)),
    ) == (
        esql_condition(sigma("s: {network.iana_number: 6}")),
        lucene_query(sigma("s: {network.iana_number: 6}")),
        esql_condition(sigma("s: {url.domain|re: '\\d+x'}")),
    )


# -- regular expressions --------------------------------------------------------------------

REGEXES = [
    ("^admin[0-9]+\\.", "i"),
    ("ab$", ""),
    ("a.c", ""),
    ("a.c", "s"),
    ("^x|y$", ""),
    ("(?:ab|cd)+e?", "i"),
    ("[^a-c]\\d{1,2}", "i"),
    ("\\w+@\\S", ""),
    ("a{,2}b{}", ""),
    ("^$", "m"),
    ("b$", "m"),
    ("^b", "m"),
    ("x*?y", ""),
    ("[]a-]", ""),
    ("\\x41\\101\\.", "i"),
    ("(?P<n>a)|b\\Z", ""),
    ("\\Ab[\\s.]", ""),
    ("[A-Cx]", "i"),
    ("a|", ""),
    ("[\\w-]{2}$", ""),
]


@pytest.mark.parametrize(("pattern", "flags"), REGEXES)
@given(text=st.text(alphabet="aAbBcCxXyY019.@-] \n", max_size=7))
def test_a_regex_matches_in_lucene_what_it_finds_in_python(
    pattern: str, flags: str, text: str
) -> None:
    """Lucene's operators that we write mean what Python's do, matching the whole text with
    ``.`` matching anything: so Python can stand in for Lucene here."""
    lucene = to_lucene(
        pattern, ignore_case="i" in flags, multiline="m" in flags, dotall="s" in flags
    )
    python = sum(f for c, f in (("i", re.I), ("m", re.M), ("s", re.S)) if c in flags)
    expected = re.search(pattern, text, python) is not None
    assert expected == (re.fullmatch(lucene.pattern, text, re.DOTALL) is not None), lucene


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=a)b", "look-around, inline flags and conditionals"),
        ("(?i)a", "look-around, inline flags and conditionals"),
        ("(a)\\1", "\\1 (a back-reference, boundary or named character)"),
        ("\\bword", "\\b (a back-reference, boundary or named character)"),
        ("a^b", "an anchor inside the pattern"),
        ("(a$)", "an anchor inside the pattern"),
        ("a++", "a possessive repeat"),
        ("[\\D]", "\\D inside a character class"),
    ],
)
def test_what_lucene_regexes_lack_is_refused(pattern: str, reason: str) -> None:
    with pytest.raises(UnsupportedRuleError) as raised:
        to_lucene(pattern)
    assert f"regular expression {pattern!r}: {reason} has no Lucene form" == str(raised.value)


# -- the built-in pack -----------------------------------------------------------------------

LOGIN_PORTS = "21, 22, 23, 110, 143, 445, 993, 995, 1433, 3306, 3389, 5432, 5900"
PRIVATE = (
    '"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", '
    '"fc00::/7", "fe80::/10", "::1/128"'
)
ESTABLISHED = '"SF", "S1", "S2", "S3", "RSTO", "RSTR"'
UNANSWERED = 'network.transport == "tcp" AND flow.state IN ("REJ", "S0", "SH", "RSTO", "RSTOS0")'
PACK_ESQL = {
    "Connection to a login service": f"FROM logs-trustwatch.flow-*\n| WHERE network.transport"
    f' == "tcp" AND destination.port IN ({LOGIN_PORTS})',
    "HTTP login refused": "FROM logs-trustwatch.flow-*\n| WHERE http.response.status_code == 401",
    "DNS tunnelling suspected": "FROM logs-trustwatch.flow-*\n| WHERE flow.dns.max_name_length "
    ">= 100 OR flow.dns.unique_names >= 30",
    "Clear-text protocol to the internet": "FROM logs-trustwatch.flow-*\n| WHERE network.transport"
    f' == "tcp" AND destination.port IN (21, 23) AND flow.state IN ({ESTABLISHED}) AND NOT '
    f"COALESCE(CIDR_MATCH(destination.ip, {PRIVATE}), false)",
    "Risky service reached from outside": "FROM logs-trustwatch.flow-*\n| WHERE network.transport"
    ' == "tcp" AND destination.port IN (23, 445, 3389, 5900, 3306, 5432, 1433, 6379, 9200, '
    '27017) AND flow.state IN ("SF", "S1", "S2", "S3", "RSTO", "RSTR") AND NOT COALESCE('
    f"CIDR_MATCH(source.ip, {PRIVATE}), false)",
    "Connection refused or left unanswered": f"FROM logs-trustwatch.flow-*\n| WHERE {UNANSWERED}",
    "Login brute force": "FROM logs-trustwatch.flow-*\n"
    f'| WHERE (network.transport == "tcp" AND destination.port IN ({LOGIN_PORTS})) AND '
    "source.ip IS NOT NULL AND destination.ip IS NOT NULL AND destination.port IS NOT NULL\n"
    "| STATS event_count = COUNT(*) BY window_start = BUCKET(event.start, 2 minutes), "
    "source.ip, destination.ip, destination.port\n"
    "| WHERE event_count >= 10",
    "HTTP login brute force": "FROM logs-trustwatch.flow-*\n"
    "| WHERE (http.response.status_code == 401) AND source.ip IS NOT NULL AND destination.ip "
    "IS NOT NULL\n"
    "| STATS event_count = COUNT(*) BY window_start = BUCKET(event.start, 2 minutes), "
    "source.ip, destination.ip\n"
    "| WHERE event_count >= 5",
    "Vertical port scan": "FROM logs-trustwatch.flow-*\n"
    f"| WHERE ({UNANSWERED}) AND source.ip IS NOT NULL AND destination.ip IS NOT NULL\n"
    "| STATS value_count = COUNT_DISTINCT(destination.port) BY window_start = "
    "BUCKET(event.start, 1 minute), source.ip, destination.ip\n"
    "| WHERE value_count >= 15",
    "Horizontal port scan": "FROM logs-trustwatch.flow-*\n"
    f"| WHERE ({UNANSWERED}) AND source.ip IS NOT NULL AND destination.port IS NOT NULL\n"
    "| STATS value_count = COUNT_DISTINCT(destination.ip) BY window_start = "
    "BUCKET(event.start, 1 minute), source.ip, destination.port\n"
    "| WHERE value_count >= 15",
}
PRIVATE_TERMS = PRIVATE.replace(", ", " OR ")
PACK_LUCENE = {
    "Connection to a login service": 'network.transport:"tcp" AND destination.port:('
    f"{LOGIN_PORTS.replace(', ', ' OR ')})",
    "HTTP login refused": "http.response.status_code:401",
    "DNS tunnelling suspected": "flow.dns.max_name_length:[100 TO *] OR "
    "flow.dns.unique_names:[30 TO *]",
    "Clear-text protocol to the internet": 'network.transport:"tcp" AND destination.port:(21 OR'
    f" 23) AND flow.state:({ESTABLISHED.replace(', ', ' OR ')}) AND (NOT destination.ip:("
    f"{PRIVATE_TERMS}))",
    "Risky service reached from outside": 'network.transport:"tcp" AND destination.port:(23 OR '
    "445 OR 3389 OR 5900 OR 3306 OR 5432 OR 1433 OR 6379 OR 9200 OR 27017) AND flow.state:("
    f'"SF" OR "S1" OR "S2" OR "S3" OR "RSTO" OR "RSTR") AND (NOT source.ip:({PRIVATE_TERMS}))',
    "Connection refused or left unanswered": 'network.transport:"tcp" AND flow.state:("REJ" OR '
    '"S0" OR "SH" OR "RSTO" OR "RSTOS0")',
}


def export(languages: list[Language], pack: Any = PACK, **options: Any) -> ElasticExport:
    rules, problems = sigma_rules(pack.rules), []
    assert [] == problems
    return export_rules(pack, rules, languages, **options)


def test_the_pack_in_esql() -> None:
    result = export([Language.ESQL])
    for rule in result.rules:
        check_esql(rule.query)
    assert (PACK_ESQL, ()) == ({r.title: r.query for r in result.rules}, result.problems)


def test_the_pack_in_lucene_without_its_correlations() -> None:
    result = export([Language.LUCENE])
    for rule in result.rules:
        check_lucene(rule.query)
    reason = "not exported (lucene: a correlation aggregates events, which Lucene cannot)"
    assert (
        PACK_LUCENE,
        [
            RuleProblem(BUILTIN_RULES / "bruteforce.yml", 14, reason),
            RuleProblem(BUILTIN_RULES / "bruteforce.yml", 40, reason),
            RuleProblem(BUILTIN_RULES / "scans.yml", 17, reason),
            RuleProblem(BUILTIN_RULES / "scans.yml", 30, reason),
        ],
    ) == ({r.title: r.query for r in result.rules}, sorted(result.problems, key=str))


def test_the_inputs_of_correlations_are_building_blocks_and_notes_are_kept() -> None:
    result = export([Language.LUCENE, Language.ESQL], metadata=True)
    assert [
        ("Connection to a login service", Language.LUCENE, True, ()),
        ("HTTP login refused", Language.LUCENE, True, ()),
        ("DNS tunnelling suspected", Language.LUCENE, False, ()),
        ("Clear-text protocol to the internet", Language.LUCENE, False, ()),
        ("Risky service reached from outside", Language.LUCENE, False, ()),
        ("Connection refused or left unanswered", Language.LUCENE, True, ()),
        ("Login brute force", Language.ESQL, False, (BUCKET_NOTE,)),
        ("HTTP login brute force", Language.ESQL, False, (BUCKET_NOTE,)),
        ("Vertical port scan", Language.ESQL, False, (BUCKET_NOTE, DISTINCT_NOTE)),
        ("Horizontal port scan", Language.ESQL, False, (BUCKET_NOTE, DISTINCT_NOTE)),
    ] == [(r.title, r.language, r.building_block, r.notes) for r in result.rules]


def test_a_rule_lucene_cannot_say_falls_back_to_esql_and_one_nothing_can_say_is_a_problem(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yml").write_text(
        "title: same address\nid: 0a0a0a0a-0000-4000-8000-00000000000a\n"
        "logsource: {category: network}\ndetection:\n"
        "  s: {source.ip|fieldref: destination.ip}\n  condition: s\n---\n"
        "title: a minute\nlogsource: {category: network}\ndetection:\n"
        "  s: {destination.port|minute: 5}\n  condition: s\n",
        encoding="utf-8",
    )
    result = export(
        [Language.LUCENE, Language.ESQL], load_rules([tmp_path]), index=("x-*",), metadata=True
    )
    assert (
        [
            "FROM x-* METADATA _id, _version, _index\n| WHERE source.ip == destination.ip",
        ],
        (
            RuleProblem(
                tmp_path / "r.yml",
                8,
                "not exported (lucene: the minute/hour/day/week/month/year modifiers; "
                "esql: the minute/hour/day/week/month/year modifiers)",
            ),
        ),
    ) == ([r.query for r in result.rules], result.problems)


def test_rules_are_exported_in_our_field_names_as_they_loaded(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        "title: sqlmap\nid: 0a0a0a0a-0000-4000-8000-00000000000b\nlogsource: {category: proxy}\n"
        "detection:\n  sel: {c-useragent|contains: sqlmap, cs-method: POST}\n  condition: sel\n",
        encoding="utf-8",
    )
    pack = load_rules([path])
    path.write_text("title: something else\n", encoding="utf-8")  # no longer read
    found = sigma_rules(pack.rules)
    assert (
        'TO_LOWER(user_agent.original) LIKE "*sqlmap*" AND TO_LOWER(http.request.method) == "post"'
    ) == esql_condition(found["0a0a0a0a-0000-4000-8000-00000000000b"]).text


# -- correlations ----------------------------------------------------------------------------


def correlation(**changes: Any) -> Correlation:
    base = Correlation(
        id="c",
        title="c",
        level="high",
        tags=(),
        kind="event_count",
        rule_ids=("a", "b"),
        group_by=("source.ip",),
        timespan_ns=90 * 1_000_000_000,
        operator="gt",
        count=3,
        field=None,
        generate=False,
        path=Path("c.yml"),
        line=1,
    )
    return replace(base, **changes)


CONDITIONS: dict[str, Translation | UnsupportedRuleError] = {
    "a": Translation("destination.port == 22"),
    "b": Translation('TO_LOWER(url.domain) LIKE "*.test"', ("note b",)),
    "x": UnsupportedRuleError("keyword x (a value without a field)"),
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {},
            "FROM logs-trustwatch.flow-*\n"
            '| WHERE ((destination.port == 22) OR (TO_LOWER(url.domain) LIKE "*.test")) AND '
            "source.ip IS NOT NULL\n"
            "| EVAL matches = CASE(destination.port == 22, 1, 0) + CASE(TO_LOWER(url.domain) LIKE "
            '"*.test", 1, 0)\n'
            "| STATS event_count = SUM(matches) BY window_start = BUCKET(event.start, 90 seconds), "
            "source.ip\n"
            "| WHERE event_count > 3",
        ),
        (
            {"kind": "temporal", "group_by": (), "timespan_ns": 3600 * 10**9},
            "FROM logs-trustwatch.flow-*\n"
            '| WHERE (destination.port == 22) OR (TO_LOWER(url.domain) LIKE "*.test")\n'
            "| EVAL rule_0 = CASE(destination.port == 22, 1, 0), rule_1 = CASE(TO_LOWER("
            'url.domain) LIKE "*.test", 1, 0)\n'
            "| STATS seen_0 = MAX(rule_0), seen_1 = MAX(rule_1) BY window_start = "
            "BUCKET(event.start, 1 hour)\n"
            "| WHERE seen_0 == 1 AND seen_1 == 1",
        ),
        (
            {
                "kind": "value_count",
                "rule_ids": ("a", "a"),
                "operator": "eq",
                "field": "destination.ip",
                "timespan_ns": 2 * 86_400 * 10**9,
            },
            "FROM logs-trustwatch.flow-*\n"
            "| WHERE (destination.port == 22) AND source.ip IS NOT NULL\n"
            "| STATS value_count = COUNT_DISTINCT(destination.ip) BY window_start = "
            "BUCKET(event.start, 2 days), source.ip\n"
            "| WHERE value_count == 3",
        ),
    ],
)
def test_correlations(changes: dict[str, Any], expected: str) -> None:
    query, notes = correlation_query(correlation(**changes), CONDITIONS)
    check_esql(query)
    distinct = (DISTINCT_NOTE,) if changes.get("kind") == "value_count" else ()
    b_note = () if changes.get("rule_ids") else ("note b",)
    assert (expected, (BUCKET_NOTE, *b_note, *distinct)) == (query, notes)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"kind": "temporal_ordered"},
            "temporal_ordered needs the order of events in a group, which STATS does not keep",
        ),
        ({"rule_ids": ("a", "x")}, "its rule x: keyword x (a value without a field)"),
    ],
)
def test_correlations_esql_cannot_evaluate(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnsupportedRuleError) as raised:
        correlation_query(correlation(**changes), CONDITIONS)
    assert reason == str(raised.value)


# -- output ----------------------------------------------------------------------------------


def test_kibana_rules() -> None:
    rules = {r.title: r for r in export([Language.LUCENE, Language.ESQL], metadata=True).rules}
    assert [
        {
            "rule_id": "6a2e7c2a-4f0e-4c54-9b0e-1c1a3f6b0b03",
            "name": "HTTP login refused",
            "description": "An HTTP request answered 401 Unauthorized.",
            "type": "query",
            "language": "lucene",
            "query": "http.response.status_code:401",
            "severity": "low",
            "risk_score": 21,
            "tags": [],
            "threat": [],
            "enabled": True,
            "interval": "300s",
            "from": "now-360s",
            "version": 1,
            "index": ["logs-*", "other-*"],
            "building_block_type": "default",
        },
        {
            "rule_id": "6a2e7c2a-4f0e-4c54-9b0e-1c1a3f6b0b04",
            "name": "HTTP login brute force",
            "description": "HTTP login brute force: at least 5 events of HTTP login refused "
            "within 2 minutes, per source.ip, destination.ip (Sigma event_count correlation).",
            "type": "esql",
            "language": "esql",
            "query": PACK_ESQL["HTTP login brute force"],
            "severity": "high",
            "risk_score": 73,
            "tags": ["attack.credential-access", "attack.t1110"],
            "threat": [
                {
                    "framework": "MITRE ATT&CK",
                    "tactic": {
                        "id": "TA0006",
                        "name": "Credential Access",
                        "reference": "https://attack.mitre.org/tactics/TA0006/",
                    },
                }
            ],
            "enabled": True,
            "interval": "300s",
            "from": "now-480s",
            "version": 1,
            "note": f"- {BUCKET_NOTE}",
        },
    ] == [
        kibana_rule(rules["HTTP login refused"], ("logs-*", "other-*")),
        kibana_rule(rules["HTTP login brute force"]),
    ]


def test_the_text_listing() -> None:
    rule = ExportedRule(
        id="i",
        title="t",
        description="d",
        level="low",
        tags=(),
        path=Path("r.yml"),
        line=3,
        language=Language.ESQL,
        query="FROM x\n| WHERE a == 1",
        notes=("n",),
    )
    lucene = replace(rule, language=Language.LUCENE, query="a:1", notes=())
    assert "// t (i) r.yml:3\n// note: n\nFROM x\n| WHERE a == 1\n\n# t (i) r.yml:3\na:1\n" == (
        as_text(ElasticExport((rule, lucene), ()))
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logs-*", ("logs-*",)),
        ("a-*, remote:b", ("a-*", "remote:b")),
        ("Logs", "'Logs' is not an index pattern"),
        ("a b", "'a b' is not an index pattern"),
        ("a,", "'' is not an index pattern"),
    ],
)
def test_index_patterns(text: str, expected: tuple[str, ...] | str) -> None:
    try:
        actual: tuple[str, ...] | str = index_patterns(text)
    except ValueError as exc:
        actual = str(exc).split(":")[0]
    assert expected == actual


@pytest.mark.parametrize(
    "name",
    ["rules.elastic", "rules.elastic_fields", "rules.esql", "rules.lucene", "rules.lucene_regex"],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert (0, True) == (result.failed, result.attempted > 0)


# -- on a real cluster -----------------------------------------------------------------------


def flow(n: int, **fields: Any) -> dict[str, Any]:
    record = {
        "event.id": f"flow{n:016d}",
        "event.dataset": "trustwatch.flow",
        "event.start": f"2026-01-02T03:04:{n % 60:02d}Z",
        "event.end": f"2026-01-02T03:04:{n % 60:02d}Z",
        "event.duration": 0,
        "flow.end_reason": "fin",
        "network.transport": "tcp",
        "network.iana_number": "6",
        "network.type": "ipv4",
        "source.ip": "198.51.100.7",
        "source.port": 40000 + n,
        "source.bytes": 60,
        "source.packets": 1,
        "destination.ip": "10.0.0.5",
        "destination.port": 22,
        "destination.bytes": 0,
        "destination.packets": 0,
        **fields,
    }
    return dump_record(validate_record(record))


EVENTS = [
    *(flow(n, **{"flow.state": "REJ", "destination.port": 1000 + n}) for n in range(16)),
    *(flow(20 + n, **{"destination.port": 22, "flow.state": "SF"}) for n in range(10)),
    flow(40, **{"destination.ip": "203.0.113.9", "destination.port": 23, "flow.state": "SF"}),
    flow(
        41,
        **{
            "network.transport": "udp",
            "network.iana_number": "17",
            "flow.dns.max_name_length": 120,
        },
    ),
    flow(42, **{"http.response.status_code": 401, "destination.port": 80}),
]


@pytest.mark.skipif(
    not ES_URL, reason="TRUSTWATCH_TEST_ES_URL is not set: no Elasticsearch cluster to run on"
)
def test_elasticsearch_finds_what_the_engine_finds() -> None:
    index = f"trustwatch-export-test-{uuid.uuid4().hex[:12]}"
    properties = {name: {"type": t.kind} for name, t in FIELD_TYPES.items() if t.kind != OBJECT}
    lines = []
    for event in EVENTS:
        lines += [{"index": {"_id": event["event.id"]}}, event]
    with httpx.Client(base_url=str(ES_URL), timeout=60) as http:
        http.put(f"/{index}", json={"mappings": {"properties": properties}}).raise_for_status()
        try:
            body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
            bulk = http.post(
                f"/{index}/_bulk?refresh=true",
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert (200, False) == (bulk.status_code, bulk.json()["errors"])
            found = export([Language.ESQL], index=(index,), metadata=True)
            lucene = {r.id: r.query for r in export([Language.LUCENE]).rules}
            for rule in PACK.rules:
                (query,) = [r.query for r in found.rules if r.id == rule.id]
                expected = sorted(e["event.id"] for e in EVENTS if rule.matches(e))
                esql = http.post("/_query", json={"query": f"{query}\n| KEEP _id\n| LIMIT 1000"})
                search = http.post(
                    f"/{index}/_search",
                    json={"query": {"query_string": {"query": lucene[rule.id]}}, "size": 1000},
                )
                assert (rule.title, expected, expected) == (
                    rule.title,
                    sorted(row[0] for row in esql.raise_for_status().json()["values"]),
                    sorted(hit["_id"] for hit in search.raise_for_status().json()["hits"]["hits"]),
                )
            rows = {}
            for rule in found.rules:
                if rule.timespan_seconds is not None:
                    answer = http.post("/_query", json={"query": rule.query}).raise_for_status()
                    rows[rule.title] = len(answer.json()["values"])
            assert {
                "Login brute force": 1,
                "HTTP login brute force": 0,
                "Vertical port scan": 1,
                "Horizontal port scan": 0,
            } == rows
        finally:
            http.delete(f"/{index}")
