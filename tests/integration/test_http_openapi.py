"""The served `/openapi.json` drives schemathesis: no request it generates, valid or not, gets a 5xx."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from redis_model.api_keys import ApiKeyStore
from tests.integration.http_served import Served, serving


@pytest.fixture
def served(backend, make_settings) -> Iterator[Served]:
    _, key = ApiKeyStore(backend.client).create("fuzz", rate=1e6)
    with serving(backend, make_settings("http://127.0.0.1:9")) as running:
        running.key = key
        yield running


def test_no_generated_request_gets_a_server_error(served):
    """Every operation, valid and invalid requests (bodies, queries, paths and headers) of each."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    auth = {"Authorization": f"Bearer {served.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document it was loaded from
    assert len(operations) == 14, [operation.label for operation in operations]

    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case) -> None:
            response = case.call(base_url=served.url, headers=auth)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)

        try:
            no_server_error()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid request
