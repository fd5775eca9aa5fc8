"""The health state, the HTTP port that serves it with the metrics, and ``ecom-health``.

The server tests bind a free port on 127.0.0.1 (no other network): the endpoints are
checked over real HTTP, as Prometheus and a container probe see them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ecom_shared.observability.health import HealthState, HttpPortUnavailable, Telemetry, serve_http
from ecom_shared.observability.healthcheck import main as ecom_health
from ecom_shared.observability.healthcheck import probe_url
from ecom_shared.observability.metrics import HealthMetrics, new_registry
from ecom_shared.settings import HttpSettings

LOCAL = HttpSettings(host="127.0.0.1", port=0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_not_ready_while_starting_then_ready() -> None:
    health = HealthState()
    health.track("cassandra")
    ready, body = health.readiness()
    assert (ready, body["reason"]) == (False, "starting")
    health.started()
    assert health.readiness() == (True, {"ready": True, "checks": {"cassandra": {"ok": True}}})


def test_a_dependency_down_says_which_why_and_since_when_until_it_is_up() -> None:
    clock = Clock()
    registry = new_registry()
    health = HealthState(metrics=HealthMetrics(registry), clock=clock)
    health.track("cassandra")
    health.track("pubsub")
    health.started()
    health.down("cassandra", "probe failed: timed out")
    clock.now += 4
    health.down("cassandra", "probe failed: still timing out")  # keeps the first time
    ready, body = health.readiness()
    assert not ready
    assert body["reason"] == "unreachable: cassandra: probe failed: still timing out"
    assert body["checks"]["cassandra"]["for_seconds"] == 4.0
    assert body["checks"]["pubsub"] == {"ok": True}
    gauge = "ecom_dependency_up"
    assert registry.get_sample_value(gauge, {"dependency": "cassandra"}) == 0
    assert registry.get_sample_value(gauge, {"dependency": "pubsub"}) == 1
    health.up("cassandra")
    assert health.readiness()[0]
    assert registry.get_sample_value(gauge, {"dependency": "cassandra"}) == 1


def test_not_ready_once_asked_to_stop() -> None:
    stop = asyncio.Event()
    health = HealthState(stop=stop)
    health.started()
    stop.set()
    ready, body = health.readiness()
    assert (ready, body["reason"]) == (False, "stopping")


async def test_not_alive_once_the_main_task_has_ended() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    health = HealthState()
    health.watch(task)
    assert health.liveness() == (True, {"alive": True})
    await task
    alive, body = health.liveness()
    assert not alive
    assert "ended" in body["reason"]


@contextlib.asynccontextmanager
async def served(telemetry: Telemetry) -> AsyncIterator[str]:
    async with serve_http(LOCAL, telemetry) as port:
        assert port
        yield f"http://127.0.0.1:{port}"


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        return reply.status, reply.headers["Content-Type"], await reply.text()


async def test_the_port_serves_metrics_liveness_and_readiness() -> None:
    telemetry = Telemetry.create()
    telemetry.health.track("cassandra")
    telemetry.health.started()
    async with served(telemetry) as base:
        status, content_type, text = await get(f"{base}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        assert 'ecom_dependency_up{dependency="cassandra"} 1.0' in text
        assert "process_cpu_seconds_total" in text
        assert (await get(f"{base}/livez"))[0] == 200
        assert (await get(f"{base}/readyz"))[0] == 200
        telemetry.health.down("cassandra", "probe failed: timed out")
        status, content_type, text = await get(f"{base}/readyz")
        assert (status, content_type) == (503, "application/json; charset=utf-8")
        assert '"reason": "unreachable: cassandra: probe failed: timed out"' in text


async def test_a_port_in_use_is_refused_with_the_settings_to_change() -> None:
    async with serve_http(LOCAL, Telemetry.create()) as port:
        taken = HttpSettings(host="127.0.0.1", port=port)
        with pytest.raises(HttpPortUnavailable, match="ECOM_HTTP__PORT") as refused:
            async with serve_http(taken, Telemetry.create()):
                pass
        assert f"127.0.0.1:{port}" in str(refused.value)


async def test_a_disabled_port_serves_nothing() -> None:
    async with serve_http(HttpSettings(enabled=False), Telemetry.create()) as port:
        assert port is None


async def test_ecom_health_exits_0_when_ready_and_1_when_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = Telemetry.create()
    async with served(telemetry) as base:
        url = f"{base}/readyz"
        assert await asyncio.to_thread(ecom_health, ["--url", url]) == 1  # still starting
        assert '"reason": "starting"' in capsys.readouterr().err
        telemetry.health.started()
        assert await asyncio.to_thread(ecom_health, ["--url", url]) == 0
        assert await asyncio.to_thread(ecom_health, ["--url", f"{base}/livez"]) == 0
    assert await asyncio.to_thread(ecom_health, ["--url", url, "--timeout", "1"]) == 1


def test_ecom_health_probes_the_configured_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOM_HTTP__PORT", "9100")
    assert probe_url(live=False) == "http://127.0.0.1:9100/readyz"
    assert probe_url(live=True) == "http://127.0.0.1:9100/livez"
    monkeypatch.delenv("ECOM_HTTP__PORT")
    assert probe_url(live=False) == "http://127.0.0.1:8000/readyz"
