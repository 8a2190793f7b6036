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
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert (0, True) == (result.failed, result.attempted > 0)
