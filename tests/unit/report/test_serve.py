"""The live page: figures computed at most once per refresh however many ask, a failure
shown over the last figures, ready only once figures exist."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ecom_report.build import Built
from ecom_report.serve import LiveReport, application
from tests.unit.report.test_page import figures_of


class Builds:
    def __init__(self, built: Built) -> None:
        self.built, self.calls, self.fail = built, 0, False

    async def __call__(self) -> Built:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.fail:
            raise ConnectionError("Cassandra is down")
        return self.built


async def client_for(report: LiveReport) -> TestClient[web.Request, web.Application]:
    client = TestClient(TestServer(application(report)))
    await client.start_server()
    return client


async def test_figures_are_computed_at_most_once_per_refresh(tmp_path: Path) -> None:
    builds = Builds(Built(figures_of(tmp_path, []), "embedded", 0.1, "ks.t"))
    report = LiveReport(builds, refresh_seconds=0.3)
    client = await client_for(report)
    try:
        assert (await client.get("/readyz")).status == 200  # the probe computed them first
        pages = await asyncio.gather(*(client.get("/") for _ in range(5)))
        assert [p.status for p in pages] == [200] * 5
        assert "Store report" in await pages[0].text()
        assert 'http-equiv="refresh" content="1"' in await pages[0].text()
        assert (await client.get("/report.json")).status == 200
        assert builds.calls == 1  # five pages and the JSON shared one computation
        assert (await client.get("/readyz")).status == 200
        await asyncio.sleep(0.35)
        await client.get("/")
        assert builds.calls == 2
    finally:
        await client.close()


async def test_a_failed_refresh_keeps_the_last_figures_under_a_banner(tmp_path: Path) -> None:
    builds = Builds(Built(figures_of(tmp_path, []), "embedded", 0.1, "ks.t"))
    report = LiveReport(builds, refresh_seconds=0.01)
    client = await client_for(report)
    try:
        assert (await client.get("/")).status == 200
        builds.fail = True
        await asyncio.sleep(0.02)
        page = await client.get("/")
        assert page.status == 200
        assert "could not be refreshed (ConnectionError: Cassandra is down)" in await page.text()
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/livez")).status == 200
    finally:
        await client.close()


async def test_no_figures_yet_is_a_clear_503(tmp_path: Path) -> None:
    builds = Builds(Built(figures_of(tmp_path, []), "embedded", 0.1, "ks.t"))
    builds.fail = True
    client = await client_for(LiveReport(builds, refresh_seconds=60))
    try:
        page = await client.get("/")
        assert page.status == 503
        assert "Not available yet" in await page.text()
        data = await client.get("/report.json")
        assert data.status == 503
        assert "Cassandra is down" in (await data.json())["error"]
    finally:
        await client.close()


async def test_a_probe_retries_a_failed_computation_once_per_refresh(tmp_path: Path) -> None:
    builds = Builds(Built(figures_of(tmp_path, []), "embedded", 0.1, "ks.t"))
    builds.fail = True
    client = await client_for(LiveReport(builds, refresh_seconds=0.2))
    try:
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/readyz")).status == 503
        assert builds.calls == 1  # not again within the refresh
        builds.fail = False
        await asyncio.sleep(0.25)
        assert (await client.get("/readyz")).status == 200  # healed by the probe alone
        assert builds.calls == 2
        await asyncio.sleep(0.25)
        assert (await client.get("/readyz")).status == 200
        assert builds.calls == 2  # healthy: a probe does not read the tables
    finally:
        await client.close()
