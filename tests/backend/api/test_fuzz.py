"""The whole API fuzzed from its own OpenAPI document (schemathesis): whatever a client sends,
signed in or not, the server answers it without a server error (5xx).

Each operation's cases are drawn with hypothesis inside one test (schemathesis' pytest fixture
loader does not run under pytest 9.2 here: ``'Function' object has no attribute '_nodeid'``)."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
import schemathesis
from api_world import Api
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import just
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = 60  # per operation and mode (valid and invalid by the schema), each sent anonymously and signed in


@pytest.mark.slow
def test_no_request_makes_a_server_error(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    signed_in = {"Authorization": f"Bearer {api.sign_in(api.chain.aggregator.account)}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    calls: list[str] = []
    assert len(operations) >= 8

    for operation, mode in product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        @given(case=operation.as_strategy(generation_mode=mode), label=just(f"{operation.label} {mode.value}"))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any, label: str) -> None:
            calls.append(label)
            case.call_and_validate(checks=[not_a_server_error])
            case.call_and_validate(headers=signed_in, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:  # nothing to get wrong: an operation without parameters or body
            assert mode is GenerationMode.NEGATIVE
    assert len(set(calls)) == 2 * len(operations) - 1  # every operation drawn both ways (but the nonce's negative)
