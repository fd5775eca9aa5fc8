"""Reading the monitoring files: the Prometheus rules, the Grafana dashboard, and what a live
Prometheus must answer for them.

The rules come in two sets. ``LIVE_RULE_FILES`` are built on the metrics the pipeline's own
services export, so a Prometheus scraping the Compose stack has data for each of them.
``GCP_RULE_FILES`` are built on Cloud Monitoring's Pub/Sub metrics (through
stackdriver_exporter), which the emulator has not: promtool tests them, the live test cannot.

An alert normally returns nothing while it does not fire, so asking a live Prometheus for its
expression proves little. Every alert of the live set is therefore written in one of two forms,
and :func:`alert_data_queries` gives what is asked instead:

- ``SERIES OP NUMBER``, where SERIES is a recorded series (``record:`` of the same file, with
  matchers allowed): the series itself is asked, and must have data;
- ``absent(SELECTOR) [or absent(SELECTOR) ...]``: each SELECTOR is asked, and must have data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.compose_files import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DASHBOARD = DASHBOARDS_DIR / "pipeline.json"

LIVE_RULE_FILES = (RULES_DIR / "pipeline.yaml",)
GCP_RULE_FILES = (RULES_DIR / "pubsub-gcp.yaml",)

_THRESHOLD = re.compile(
    r"^(?P<series>[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^{}]*\})?)\s*(?:==|!=|>=|<=|>|<)\s*-?[0-9.]+$"
)
_ABSENT = re.compile(r"^absent\((?P<selector>[^()]+)\)$")


@dataclass(frozen=True)
class Rule:
    file: Path
    group: str
    kind: str  # "record" or "alert"
    name: str
    expr: str
    raw: dict[str, Any]


def rules(*files: Path) -> Iterator[Rule]:
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            for raw in group["rules"]:
                kind = "record" if "record" in raw else "alert"
                expr = " ".join(str(raw["expr"]).split())
                yield Rule(path, group["name"], kind, str(raw[kind]), expr, raw)


def series_name(selector: str) -> str:
    return selector.split("{", 1)[0]


def alert_data_queries(rule: Rule, recorded: set[str]) -> list[str]:
    """What to ask a live Prometheus for an alert of the live set (see the module's docstring);
    an alert in neither form is an error."""
    threshold = _THRESHOLD.match(rule.expr)
    if threshold:
        series = threshold.group("series")
        if series_name(series) not in recorded:
            raise ValueError(f"{rule.name}: {series_name(series)} is not a recorded series")
        return [series]
    selectors = []
    for part in rule.expr.split(" or "):
        absent = _ABSENT.match(part.strip())
        if absent is None:
            raise ValueError(
                f"{rule.name}: {rule.expr!r} is neither SERIES OP NUMBER nor absent(...)"
            )
        selectors.append(absent.group("selector"))
    return selectors


def live_rule_queries() -> dict[str, str]:
    """Label -> query, for every recording rule (its expression, and its recorded series) and
    every alert of the live rule files."""
    live = list(rules(*LIVE_RULE_FILES))
    recorded = {rule.name for rule in live if rule.kind == "record"}
    queries: dict[str, str] = {}
    for rule in live:
        if rule.kind == "record":
            queries[f"record {rule.name}: expr"] = rule.expr
            queries[f"record {rule.name}"] = rule.name
        else:
            for number, query in enumerate(alert_data_queries(rule, recorded)):
                queries[f"alert {rule.name} [{number}]"] = query
    return queries


def dashboard_panels(path: Path = DASHBOARD) -> list[dict[str, Any]]:
    """Every panel of a dashboard, those inside rows included (rows themselves excluded)."""
    found: list[dict[str, Any]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            if panel.get("type") == "row":
                walk(panel.get("panels", []))
            else:
                found.append(panel)

    walk(json.loads(path.read_text(encoding="utf-8"))["panels"])
    return found


def dashboard_queries(path: Path = DASHBOARD) -> dict[str, str]:
    """Label (panel title and target) -> PromQL, for every target of every panel."""
    return {
        f"panel {panel['title']!r} {target['refId']}": " ".join(str(target["expr"]).split())
        for panel in dashboard_panels(path)
        for target in panel.get("targets", [])
    }
