"""The Kubernetes manifests (deploy/kubernetes), rendered per overlay and checked without a
cluster: the Kubernetes schemas (kubernetes-validate) and KEDA's CRD schemas (from KEDA's Go
module), every setting against the service's settings class as the Compose tests do, probes
against the code's routes, grace against the drain budget, resources, and the user and
filesystem the images are made for.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from pydantic_settings import BaseSettings

from ecom_devtools.errors import InfraError
from ecom_devtools.ops import keda
from ecom_shared.observability.health import Telemetry, build_app
from ecom_shared.settings import ConsumerServiceSettings, HttpSettings
from tests.kubernetes.rendered import (
    OVERLAYS,
    ROOT,
    Rendered,
    build_overlay,
    build_with_components,
    is_project_image,
)
from tests.unit.deploy.test_compose import (
    CLIENT_VARIABLES,
    SETTINGS_OF_COMMAND,
    assert_variable_is_a_setting,
)

# The oldest Kubernetes the manifests are for (unhealthyPodEvictionPolicy is GA from 1.31) and
# the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
KEDA_GROUPS = ("keda.sh/", "eventing.keda.sh/")
# How long an open pull can hold a consumer's stop beyond its drain budget (docs/STYLE: ~5 s).
OPEN_PULL_SECONDS = 5
SECRET_VALUES = {"username": "ecom", "password": "a-password"}  # stand-ins for secretKeyRefs
KNOWN_SECRETS = {"ecom-cassandra", "ecom-gcp-key"}
LONG_RUNNING = ("order-consumer", "payment-consumer", "dlq-worker", "report")
CONSUMERS = {"order-consumer": "ORDERS", "payment-consumer": "PAYMENTS"}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    rendered = {name: build_overlay(name) for name in OVERLAYS}
    with_components = build_with_components(tmp_path_factory.mktemp("kustomize"), "gcp")
    rendered[with_components.name] = with_components
    return rendered


@pytest.fixture(scope="module")
def keda_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    try:
        return keda.crd_schemas()
    except InfraError as exc:
        pytest.fail(f"KEDA's CRDs could not be fetched: {exc}", pytrace=False)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ECOM_") or name in CLIENT_VARIABLES:
            monkeypatch.delenv(name)


# ---- helpers ------------------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists the known ones. The API server
    would drop a misspelt field of a custom resource silently (pruning); here it is an error."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def validate_custom(
    document: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    schema = schemas[(document["apiVersion"], document["kind"])]
    jsonschema.Draft7Validator(strict(schema)).validate(document)


def is_keda(document: dict[str, Any]) -> bool:
    return str(document["apiVersion"]).startswith(KEDA_GROUPS)


def container_env(rendered: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: ConfigMaps first, then ``env`` over them."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(rendered.config_map(source["configMapRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] in KNOWN_SECRETS, ref
            env[item["name"]] = SECRET_VALUES[ref["key"]]
    return env


def settings_of(
    container: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """The service's settings built from ``env``, after checking each variable is one of them."""
    model = SETTINGS_OF_COMMAND[container["command"][0]]
    with monkeypatch.context() as patch:
        for variable, value in env.items():
            if variable.startswith("ECOM_"):
                assert_variable_is_a_setting(model, variable)
            else:
                assert variable in CLIENT_VARIABLES, variable
            patch.setenv(variable, value)
        return model()


def deployment_container(rendered: Rendered, name: str) -> dict[str, Any]:
    (container,) = rendered.get("Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def routes(app_paths: Any) -> set[str]:
    return {resource.canonical for resource in app_paths.router.resources()}


# ---- schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_validates_against_the_kubernetes_schemas(
    variants: dict[str, Rendered], version: str
) -> None:
    for rendered in variants.values():
        for document in rendered.documents:
            if not is_keda(document):
                kubernetes_validate.validate(document, version, strict=True)


def test_keda_resources_validate_against_keda_s_crds(
    variants: dict[str, Rendered], keda_schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    checked = 0
    for rendered in variants.values():
        for document in rendered.documents:
            if is_keda(document):
                validate_custom(document, keda_schemas)
                checked += 1
    assert checked >= 3 * 2  # two ScaledObjects and a TriggerAuthentication, per gcp variant


def test_the_schema_checks_would_catch_a_mistake(
    variants: dict[str, Rendered], keda_schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    deployment = copy.deepcopy(variants["gcp"].get("Deployment", "order-consumer"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    scaled = copy.deepcopy(variants["gcp"].get("ScaledObject", "order-consumer"))
    scaled["spec"]["minReplicaCont"] = 2
    with pytest.raises(jsonschema.ValidationError, match="minReplicaCont"):
        validate_custom(scaled, keda_schemas)


def test_every_reference_resolves(variants: dict[str, Rendered]) -> None:
    """ConfigMaps (renamed with their hash by kustomize), service accounts, scale targets."""
    for rendered in variants.values():
        config_maps = {doc["metadata"]["name"] for doc in rendered.of_kind("ConfigMap")}
        accounts = {doc["metadata"]["name"] for doc in rendered.of_kind("ServiceAccount")}
        for where, pod in rendered.project_pods():
            if "serviceAccountName" in pod:
                assert pod["serviceAccountName"] in accounts, (rendered.name, where)
            for container in pod["containers"]:
                for source in container.get("envFrom", []):
                    name = source["configMapRef"]["name"]
                    assert name in config_maps, (rendered.name, where, name)
        deployments = {doc["metadata"]["name"] for doc in rendered.of_kind("Deployment")}
        for scaled in rendered.of_kind("ScaledObject"):
            assert scaled["spec"]["scaleTargetRef"]["name"] in deployments, rendered.name


# ---- settings -----------------------------------------------------------------------------


def test_every_variable_the_manifests_set_is_accepted_by_the_service(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: set[str] = set()
    for rendered in variants.values():
        for _where, pod in rendered.project_pods():
            for container in pod["containers"]:
                env = container_env(rendered, container)
                settings_of(container, env, monkeypatch)
                seen.add(container["command"][0])
    assert seen == set(SETTINGS_OF_COMMAND) - {"ecom-verify"}


def test_every_service_finds_cassandra_and_pubsub_where_the_overlay_puts_them(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = variants["local"]
    services = {doc["metadata"]["name"]: doc for doc in local.of_kind("Service")}
    for where, pod in local.project_pods():
        for container in pod["containers"]:
            env = container_env(local, container)
            if "ECOM_CASSANDRA__CONTACT_POINTS" in env:
                settings = settings_of(container, env, monkeypatch)
                cassandra = settings.cassandra  # type: ignore[attr-defined]
                assert list(cassandra.contact_points) == ["cassandra"], where
                assert cassandra.port in [p["port"] for p in services["cassandra"]["spec"]["ports"]]
            if "ECOM_PUBSUB__PROJECT_ID" in env:
                host, _, port = env["PUBSUB_EMULATOR_HOST"].partition(":")
                ports = [p["port"] for p in services[host]["spec"]["ports"]]
                assert int(port) in ports, where


def test_the_gcp_overlay_talks_to_google_cloud_pubsub(variants: dict[str, Rendered]) -> None:
    for name, rendered in variants.items():
        if not name.startswith("gcp"):
            continue
        for config_map in rendered.of_kind("ConfigMap"):
            assert "PUBSUB_EMULATOR_HOST" not in config_map.get("data", {}), config_map
        for where, pod in rendered.pod_templates():
            for container in pod["containers"]:
                env = {item["name"] for item in container.get("env", [])}
                assert "PUBSUB_EMULATOR_HOST" not in env, where
        project = rendered.config_map(config_map_named(rendered, "ecom-pubsub"))
        assert project["ECOM_PUBSUB__PROJECT_ID"] != "local-project"


def test_the_local_overlay_talks_to_the_emulator(variants: dict[str, Rendered]) -> None:
    local = variants["local"]
    pubsub = local.config_map(config_map_named(local, "ecom-pubsub"))
    assert pubsub["PUBSUB_EMULATOR_HOST"] == "pubsub-emulator:8085"
    emulator = local.get("Deployment", "pubsub-emulator")
    (container,) = emulator["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("ecom-pipeline/pubsub-emulator:")
    assert local.get("StatefulSet", "cassandra")["spec"]["replicas"] == 1


def config_map_named(rendered: Rendered, prefix: str) -> str:
    (name,) = [
        doc["metadata"]["name"]
        for doc in rendered.of_kind("ConfigMap")
        if re.fullmatch(rf"{prefix}(-[a-z0-9]+)?", doc["metadata"]["name"])
    ]
    return str(name)


# ---- probes, grace, metrics ---------------------------------------------------------------


def test_probes_ask_the_paths_and_port_the_services_serve(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecom_report.serve import LiveReport, application  # noqa: PLC0415 - DuckDB's import

    served = routes(build_app(Telemetry.create()))
    report = routes(application(LiveReport(lambda: None, 30)))  # type: ignore[arg-type,return-value]
    for rendered in variants.values():
        for name in LONG_RUNNING:
            if name == "dlq-worker" and rendered.name.endswith("+components"):
                continue  # the CronJob's --once serves nothing
            container = deployment_container(rendered, name)
            settings = settings_of(container, container_env(rendered, container), monkeypatch)
            http = settings.http  # type: ignore[attr-defined]
            assert isinstance(http, HttpSettings)
            assert http.enabled, name
            paths = report if name == "report" else served
            for probe, path in (
                ("startupProbe", "/livez"),
                ("livenessProbe", "/livez"),
                ("readinessProbe", "/readyz"),
            ):
                assert container[probe]["httpGet"]["path"] == path, (name, probe)
                assert path in paths, (name, path)
                assert probe_port(container, container[probe]) == http.port, (name, probe)


def test_metrics_are_scraped_where_they_are_served(variants: dict[str, Rendered]) -> None:
    for rendered in variants.values():
        for deployment in rendered.of_kind("Deployment"):
            name = deployment["metadata"]["name"]
            if name not in LONG_RUNNING:
                continue
            annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
            if name == "report":  # it serves no /metrics
                assert "prometheus.io/scrape" not in annotations
                continue
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            assert annotations["prometheus.io/scrape"] == "true", name
            assert annotations["prometheus.io/path"] == "/metrics", name
            port = int(annotations["prometheus.io/port"])
            assert port == probe_port(container, container["livenessProbe"]), name


def test_the_kubelet_waits_for_a_consumer_s_drain(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    for rendered in variants.values():
        for name in CONSUMERS:
            pod = rendered.get("Deployment", name)["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            settings = settings_of(container, container_env(rendered, container), monkeypatch)
            assert isinstance(settings, ConsumerServiceSettings)
            budget = settings.consumer.shutdown_grace_seconds
            assert pod["terminationGracePeriodSeconds"] > budget + OPEN_PULL_SECONDS, name
        for where, pod in rendered.project_pods():
            assert pod.get("shareProcessNamespace") is True, (rendered.name, where)
            if not where.startswith("Job/"):
                assert pod["terminationGracePeriodSeconds"] >= 10, where


# ---- resources and security ---------------------------------------------------------------


def test_every_container_has_requests_and_limits(variants: dict[str, Rendered]) -> None:
    for rendered in variants.values():
        for where, pod in rendered.pod_templates():
            for container in pod["containers"]:
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), where
                assert "memory" in resources["limits"], where
                if is_project_image(container["image"]):
                    assert "cpu" in resources["limits"], where


def dockerfile_uid() -> int:
    match = re.search(r"useradd [^\n]*--uid (\d+)", (ROOT / "Dockerfile").read_text("utf-8"))
    assert match
    return int(match.group(1))


def test_project_pods_run_as_the_image_s_user_on_a_read_only_root(
    variants: dict[str, Rendered],
) -> None:
    uid = dockerfile_uid()
    for rendered in variants.values():
        pods = list(rendered.project_pods())
        assert pods, rendered.name
        for where, pod in pods:
            security = pod["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["runAsUser"] == uid, where
            assert security["seccompProfile"]["type"] == "RuntimeDefault", where
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"]["drop"] == ["ALL"], where
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_consumers_have_a_disruption_budget_that_never_blocks_on_unready_pods(
    variants: dict[str, Rendered],
) -> None:
    for rendered in variants.values():
        budgets = {
            doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: doc
            for doc in rendered.of_kind("PodDisruptionBudget")
        }
        for name in CONSUMERS:
            budget = budgets[name]["spec"]
            assert budget["maxUnavailable"] == 1, name
            assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name


# ---- autoscaling and identity (gcp) -------------------------------------------------------


def test_each_consumer_scales_on_its_own_subscription(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, rendered in variants.items():
        if not name.startswith("gcp"):
            assert not rendered.of_kind("ScaledObject"), name
            continue
        auths = {doc["metadata"]["name"]: doc for doc in rendered.of_kind("TriggerAuthentication")}
        for consumer, section in CONSUMERS.items():
            deployment = rendered.get("Deployment", consumer)
            assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
            container = deployment_container(rendered, consumer)
            env = container_env(rendered, container)
            settings = settings_of(container, env, monkeypatch)
            assert isinstance(settings, ConsumerServiceSettings)
            subscription = (
                f"projects/{settings.pubsub.project_id}/subscriptions/"
                f"{env[f'ECOM_PUBSUB__{section}_SUBSCRIPTION']}"
            )
            (scaled,) = [
                doc
                for doc in rendered.of_kind("ScaledObject")
                if doc["spec"]["scaleTargetRef"]["name"] == consumer
            ]
            spec = scaled["spec"]
            assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], consumer
            modes = {}
            for trigger in spec["triggers"]:
                assert trigger["type"] == "gcp-pubsub", consumer
                assert trigger["metadata"]["subscriptionName"] == subscription, consumer
                auth = auths[trigger["authenticationRef"]["name"]]
                assert auth["spec"]["podIdentity"]["provider"] == "gcp"
                modes[trigger["metadata"]["mode"]] = float(trigger["metadata"]["value"])
            assert set(modes) == {"SubscriptionSize", "OldestUnackedMessageAge"}, consumer
            in_hand = settings.consumer.pullers * settings.consumer.max_messages
            assert modes["SubscriptionSize"] > in_hand, "a replica's own batches would scale it"


def test_consumers_act_as_a_google_service_account_of_the_project(
    variants: dict[str, Rendered],
) -> None:
    rendered = variants["gcp"]
    project = rendered.config_map(config_map_named(rendered, "ecom-pubsub"))[
        "ECOM_PUBSUB__PROJECT_ID"
    ]
    account = rendered.get("ServiceAccount", "ecom-consumer")
    email = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert email.endswith(f"@{project}.iam.gserviceaccount.com")
    for consumer in CONSUMERS:
        pod = rendered.get("Deployment", consumer)["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "ecom-consumer"
    assert "annotations" not in rendered.get("ServiceAccount", "ecom-store")["metadata"]


def test_the_cronjob_component_replaces_the_worker_deployment(
    variants: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = variants["gcp+components"]
    assert "dlq-worker" not in {d["metadata"]["name"] for d in rendered.of_kind("Deployment")}
    cron = rendered.get("CronJob", "dlq-worker")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["ecom-dlq-worker", "--once"]
    for consumer in CONSUMERS:
        env = container_env(rendered, deployment_container(rendered, consumer))
        key = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
        pod = rendered.get("Deployment", consumer)["spec"]["template"]["spec"]
        (mount,) = [
            m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == str(key.parent)
        ]
        assert mount["readOnly"] is True
