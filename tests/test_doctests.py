"""The runnable examples in docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "sensors.wire",
    "sensors.addresses",
    "sensors.flows",
    "sensors.community_id",
    "sensors.packet",
    "api.tokens",
    "api.body",
    "api.store.timeconv",
    "api.store.keyset",
    "api.cursors",
    "api.lifecycle",
    "api.severity",
    "api.systems",
    "rules.matcher",
    "rules.intel",
    "rules.community",
    "scoring.beacon",
    "api.delivery.stix",
    "scoring.features",
    "scoring.guarded",
    "scoring.state",
    "sensors.scanner.result",
    "sensors.scanner.target",
    "sensors.scanner.markup",
    "sensors.scanner.exposure",
    "sensors.scanner.availability",
    "sensors.scanner.disclosure",
    "sensors.scanner.eol",
    "sensors.scanner.tls",
    "sensors.scanner.tls_grade",
    "scoring.sitestream",
    "scoring.sitestream_scan",
    "scoring.sitestream_content",
    "scoring.sitestream_latency",
    "scoring.sitestream_availability",
    "scoring.trust_model",
    "scoring.trust",
    "scoring.trust_table",
    "scoring.trust_points",
    "scoring.trust_facts",
    "scoring.trust_site",
    "scoring.trust_incidents",
    "scoring.trust_stability",
    "scoring.trust_provider",
    "scoring.methodology",
    "api.providers",
    "api.scanplan",
    "api.scanjobs",
    "api.badge",
    "api.ratelimit",
    "api.trust_report",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert (0, True) == (result.failed, result.attempted > 0)
