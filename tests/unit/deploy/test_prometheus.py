"""The Prometheus rules, their promtool tests, the Compose scrape configuration and the Grafana
dashboard, checked without a server.

``promtool`` (Debian's ``prometheus`` package; ``scripts/bootstrap`` installs it as root) checks
and unit-tests the rules. Without it these tests fail, naming the package: they are never
skipped. ``tests/docker/test_monitoring.py`` asks a live Prometheus the same queries.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_files import BASE_FILE, ROOT, merged
from tests.monitoring_files import (
    DASHBOARD,
    DASHBOARDS_DIR,
    GCP_RULE_FILES,
    GRAFANA_DIR,
    LIVE_RULE_FILES,
    PROMETHEUS_CONFIG,
    RULE_TESTS_DIR,
    RULES_DIR,
    Rule,
    alert_data_queries,
    dashboard_panels,
    dashboard_queries,
    rules,
)

SCRAPED = ("order-consumer", "payment-consumer", "dlq-worker", "producer")
"""The Compose services that serve /metrics (the report serves none)."""
METRICS_PORT = 8000  # ECOM_HTTP__PORT's default, which compose.yaml leaves alone
SEVERITIES = {"critical", "warning"}
DOCS = ROOT / "docs" / "observability.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = os.environ.get("ECOM_PROMTOOL") or shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: install Debian's prometheus package (scripts/bootstrap does "
            "so as root) or point ECOM_PROMTOOL at a promtool binary"
        )
    return found


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def test_files_are_split_into_the_live_and_the_gcp_set() -> None:
    assert sorted([*LIVE_RULE_FILES, *GCP_RULE_FILES]) == rule_files()


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", *rule_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    tests = sorted(RULE_TESTS_DIR.glob("*.yaml"))
    assert tests
    result = run_promtool(promtool, "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests), result.stdout


def unit_tests() -> list[dict[str, Any]]:
    """Every promtool test file, parsed, with its rule files resolved."""
    loaded = []
    for path in sorted(RULE_TESTS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["rule_files"] = [(path.parent / name).resolve() for name in document["rule_files"]]
        loaded.append(document)
    return loaded


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """For each alert, a promtool test in which it fires, and one evaluation in which it must
    not (before its ``for``, or for series beside it that must not trigger it)."""
    firing: set[str] = set()
    silent: set[str] = set()
    tested_files: set[Path] = set()
    for document in unit_tests():
        tested_files |= set(document["rule_files"])
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert tested_files == set(rule_files())
    alerts = {rule.name for rule in rules(*rule_files()) if rule.kind == "alert"}
    assert alerts - firing == set(), "never tested firing"
    assert alerts - silent == set(), "never tested not firing"


def test_live_alerts_watch_a_series_that_can_be_asked_for() -> None:
    """See tests/monitoring_files.py: a live alert is ``SERIES OP NUMBER`` on a recorded series,
    or ``absent(...)``, so the live test can ask for what it watches."""
    live = list(rules(*LIVE_RULE_FILES))
    recorded = {rule.name for rule in live if rule.kind == "record"}
    for rule in live:
        if rule.kind == "alert":
            assert alert_data_queries(rule, recorded), rule.name


def alerts() -> list[Rule]:
    return [rule for rule in rules(*rule_files()) if rule.kind == "alert"]


def test_every_alert_has_a_severity_a_summary_and_a_runbook_in_the_docs() -> None:
    headings = {
        line.removeprefix("#### ").strip()
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.startswith("#### ")
    }
    for rule in alerts():
        assert rule.raw["labels"]["severity"] in SEVERITIES, rule.name
        annotations = rule.raw["annotations"]
        assert annotations["summary"], rule.name
        assert annotations["runbook"] == f"docs/observability.md#{rule.name.lower()}", rule.name
        assert rule.name in headings, f"{rule.name}: no '#### {rule.name}' in {DOCS.name}"


def test_recorded_series_follow_the_naming_convention() -> None:
    """``level:metric:operations`` (Prometheus' recording rule naming)."""
    for rule in rules(*rule_files()):
        if rule.kind == "record":
            assert re.fullmatch(r"[a-z_]+:ecom_[a-z_]+:[a-z0-9_]+", rule.name), rule.name


# ---- the scrape configuration ---------------------------------------------------------------


def test_promtool_accepts_the_scrape_configuration(promtool: str) -> None:
    result = run_promtool(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_with_metrics_is_scraped_in_every_replica() -> None:
    """A job per service, named as the rules expect, found by Docker's DNS (one A record per
    replica), at the port the services serve on."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = merged(BASE_FILE)["services"]
    for name in SCRAPED:
        assert name in services, name
        assert "ECOM_HTTP__PORT" not in (services[name].get("environment") or {}), name
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name]
        assert discovery["type"] == "A"
        assert discovery["port"] == METRICS_PORT
    selected = set()
    for rule in rules(*LIVE_RULE_FILES):
        selected |= set(re.findall(r'job=~?"([^"]+)"', rule.expr))
    for selector in selected:
        assert set(selector.split("|")) <= set(jobs), selector


def test_compose_mounts_the_configuration_and_the_rules_where_it_reads_them() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    service = merged(BASE_FILE)["services"]["prometheus"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in service["volumes"] if ":ro" in volume)
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    assert config["rule_files"] == [f"{mounts['./deploy/prometheus/rules']}/*.yaml"]


# ---- the Grafana dashboard and its provisioning --------------------------------------------


def provisioning(kind: str) -> dict[str, Any]:
    (path,) = (GRAFANA_DIR / "provisioning" / kind).glob("*.yaml")
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    (source,) = provisioning("datasources")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the Compose service and its port
    panels = dashboard_panels()
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_queries_are_plain_promql(promtool: str, tmp_path: Path) -> None:
    """No Grafana variable (the live test sends each query to Prometheus as it is), and each
    parses: promtool checks them as recording rules."""
    queries = dashboard_queries()
    for label, query in queries.items():
        assert "$" not in query, label
    document = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query:{number}", "expr": query}
                    for number, query in enumerate(queries.values())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = run_promtool(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_provisioned_from_the_folder_compose_mounts() -> None:
    (provider,) = provisioning("dashboards")["providers"]
    service = merged(BASE_FILE)["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in service["volumes"] if ":ro" in volume)
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert DASHBOARD.parent == DASHBOARDS_DIR
    home = service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


KUBERNETES_CONFIG = ROOT / "deploy" / "prometheus" / "kubernetes.yml"


def test_on_kubernetes_the_job_is_the_pods_app_name_as_the_rules_expect() -> None:
    """The rules select jobs by the Compose service names; on Kubernetes the job comes from the
    pods' ``app.kubernetes.io/name`` label, which the manifests set to those same names on every
    pod they ask to be scraped. (Debian's promtool is built without Kubernetes discovery, so it
    cannot check this file: its structure is checked here instead.)"""
    config = yaml.safe_load(KUBERNETES_CONFIG.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    named = [r for r in job["relabel_configs"] if r.get("target_label") == "job"]
    assert named == [
        {
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "action": "replace",
            "target_label": "job",
        }
    ]
    scraped = {}
    for path in (ROOT / "deploy" / "kubernetes" / "base").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not document or document.get("kind") not in {"Deployment", "CronJob"}:
                continue
            template = document["spec"]["template"]
            metadata = template["metadata"]
            if metadata.get("annotations", {}).get("prometheus.io/scrape") == "true":
                scraped[metadata["labels"]["app.kubernetes.io/name"]] = metadata["annotations"]
    selected = set()
    for rule in rules(*LIVE_RULE_FILES):
        selected |= set(re.findall(r'job=~?"([^"]+)"', rule.expr))
    wanted = {name for selector in selected for name in selector.split("|")} - {"producer"}
    assert wanted <= set(scraped), (wanted, set(scraped))
    assert {a["prometheus.io/port"] for a in scraped.values()} == {str(METRICS_PORT)}
