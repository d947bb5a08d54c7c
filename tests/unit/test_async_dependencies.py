"""Every route and dependency of every service (and of the RunPod simulator) is a coroutine.
FastAPI runs a plain `def` dependency or endpoint in a worker thread: a thread hand-off per
request (in the gateway it was a fifth of a create's CPU, spent in the thread pool's locks)."""

import inspect
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from openv_bridge.config import Settings as BridgeSettings
from openv_bridge.main import create_app as bridge_app
from openv_gateway.config import Settings as GatewaySettings
from openv_gateway.main import create_app as gateway_app
from openv_jobs.config import Settings as JobsSettings
from openv_jobs.main import create_app as jobs_app
from openv_runpod_sim.app import create_app as sim_app
from openv_storage.config import Settings as StorageSettings
from openv_storage.main import create_app as storage_app
from openv_webhooks.config import Settings as WebhooksSettings
from openv_webhooks.main import create_app as webhooks_app


def _is_coroutine(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 (a callable instance, e.g. HTTPBearer)
    )


def _sync_calls(dependant: Dependant, where: str) -> list[str]:
    found = [] if dependant.call is None or _is_coroutine(dependant.call) else [where]
    for sub in dependant.dependencies:
        found += _sync_calls(sub, f"{where} <- {getattr(sub.call, '__name__', sub.call)}")
    return found


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, including those of included routers (FastAPI 0.165 keeps those
    behind an `_IncludedRouter`)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found += _api_routes(list(included.routes))
    return found


def _apps() -> list[tuple[str, FastAPI]]:
    return [
        ("gateway", gateway_app(GatewaySettings())),
        ("jobs", jobs_app(JobsSettings())),
        ("bridge", bridge_app(BridgeSettings())),
        ("storage", storage_app(StorageSettings())),
        ("webhooks", webhooks_app(WebhooksSettings())),
        # The simulator shares the machine with the stack in every local run and benchmark.
        ("runpod-sim", sim_app()),
    ]


@pytest.mark.parametrize(("name", "app"), _apps(), ids=lambda value: str(value)[:8])
def test_no_route_or_dependency_runs_in_a_thread(name: str, app: FastAPI) -> None:
    routes = _api_routes(list(app.routes))
    assert routes, f"{name} has no API routes"
    sync = [
        call for route in routes for call in _sync_calls(route.dependant, f"{name} {route.path}")
    ]
    assert sync == []
