"""Schemathesis fuzzes the live gateway from its own /openapi.json: no request may get a 500
(or a 503 from a crash), and every response must match the documented status codes, media
types, headers and schemas. Bounded examples per operation keep it well under a minute."""

import uuid
from itertools import count
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token

pytestmark = pytest.mark.e2e

#: Examples per operation and mode (valid data, then data that breaks the schema).
EXAMPLES = 12


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_live_api_matches_its_openapi_document(stack: LocalStack, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json", timeout=30)
    users = count()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 9  # /v1 routes and /healthz (/readyz is on the admin port)
    calls: dict[str, int] = {}
    statuses: set[int] = set()

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any]) -> None:
            # Each request from another user: the per-user rate limit (a documented 429)
            # must not turn the run into 429s.
            user = f"fuzz-{next(users)}-{uuid.uuid4().hex[:8]}"
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {make_token(user)}"},
                timeout=30,
                # Values the schema allows but the API refuses on meaning (a cursor it never
                # issued, `Prefer: wait=abc`) are documented 422s, not failures.
                excluded_checks=[positive_data_acceptance],
            )
            # A 503 is documented, but here every dependency is up: one would mean a crash.
            assert response.status_code != 503, response.text
            label = case.operation.label
            calls[label] = calls.get(label, 0) + 1
            statuses.add(response.status_code)

        try:
            check()
        except Unsatisfiable:
            # Nothing of this operation can break the schema (e.g. /healthz has no inputs).
            assert mode is GenerationMode.NEGATIVE, operation.label

    if mode is GenerationMode.POSITIVE:
        assert len(calls) == len(operations), calls
    else:
        assert {"POST /v1/videos", "GET /v1/videos", "DELETE /v1/videos/{video_id}"} <= set(
            calls
        ), calls
    assert sum(calls.values()) >= len(calls)
    assert not {500, 503} & statuses
