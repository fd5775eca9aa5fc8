"""The Compose files, checked without an engine: schema, commands, settings, scaling, ordering,
the one published port.

``tests/docker`` runs the same files on a real engine; these checks catch most mistakes in
milliseconds and run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from ecom_devtools.docker.cli import OFFICIAL_IMAGES
from ecom_dlq_worker.settings import DlqWorkerSettings
from ecom_producer.settings import ProducerSettings
from ecom_shared.settings import (
    ConsumerServiceSettings,
    ServiceSettings,
    StoreServiceSettings,
)
from tests.compose_files import (
    BASE_FILE,
    CLUSTER_FILE,
    OVERRIDE_FILES,
    ROOT,
    MissingVariableError,
    cassandra_nodes,
    environment,
    interpolate,
    load,
    merged,
    untagged,
    variables_used,
)

SETTINGS_OF_COMMAND: dict[str, type[BaseSettings]] = {
    "ecom-order-consumer": ConsumerServiceSettings,
    "ecom-payment-consumer": ConsumerServiceSettings,
    "ecom-dlq-worker": DlqWorkerSettings,
    "ecom-producer": ProducerSettings,
    "ecom-verify": ServiceSettings,
    "ecom-setup": ServiceSettings,
    "ecom-report": StoreServiceSettings,
}
SCALABLE = ("order-consumer", "payment-consumer", "dlq-worker")
LONG_RUNNING = (*SCALABLE, "report")
# The one service of the pipeline published on a host port (it is not scaled), and the
# variable that moves it.
PUBLISHED = "report"
PUBLISHED_PORT_VARIABLE = "ECOM_REPORT_PORT"
# The monitoring services, under their profiles, published the same way: variable, port.
MONITORING_PORTS = {
    "prometheus": ("ECOM_PROMETHEUS_PORT", 9090),
    "grafana": ("ECOM_GRAFANA_PORT", 3000),
}
# Variables the services read that are not settings: the Pub/Sub client's own.
CLIENT_VARIABLES = {"PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"}
# Variables the Compose files interpolate that are about images and Cassandra's container.
COMPOSE_VARIABLES = {
    "CASSANDRA_IMAGE",
    "CASSANDRA_MAX_HEAP_SIZE",
    "CASSANDRA_HEAP_NEWSIZE",
    "EMULATOR_IMAGE",
    "EMULATOR_BASE_IMAGE",
    "PYTHON_IMAGE",
    "PROMETHEUS_IMAGE",
    "GRAFANA_IMAGE",
    "ECOM_IMAGE_PREFIX",
    "ECOM_IMAGE_TAG",
    "GCP_CREDENTIALS_FILE",
    "CLUSTER_SUBNET_PREFIX",
    "HOME",
    PUBLISHED_PORT_VARIABLE,
    *(variable for variable, _ in MONITORING_PORTS.values()),
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ECOM_") or name == "PUBSUB_EMULATOR_HOST":
            monkeypatch.delenv(name)


def base() -> dict[str, Any]:
    return merged(BASE_FILE)


def gcp() -> dict[str, Any]:
    return merged(BASE_FILE, *OVERRIDE_FILES)


def cluster() -> dict[str, Any]:
    return merged(BASE_FILE, CLUSTER_FILE)


MODES = {"emulator": base, "gcp": gcp, "cluster": cluster}


# ---- Dockerfile ---------------------------------------------------------------------------


def dockerfile_stages(path: Path) -> dict[str, dict[str, Any]]:
    """Each stage: its parent (``FROM``), and its last ``CMD`` and ``USER`` if any."""
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    for line in text.splitlines():
        words = line.split(maxsplit=1)
        if not words or words[0].startswith("#"):
            continue
        keyword, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
        if keyword == "FROM":
            parent, _, name = rest.partition(" AS ")
            current = {"from": parent.strip()}
            stages[name.strip() or parent.strip()] = current
        elif keyword in ("CMD", "USER", "HEALTHCHECK"):
            current[keyword] = rest.strip()
    return stages


def stage_value(stages: dict[str, dict[str, Any]], target: str, keyword: str) -> str | None:
    stage: dict[str, Any] | None = stages[target]
    while stage is not None:
        if keyword in stage:
            return str(stage[keyword])
        stage = stages.get(stage["from"])
    return None


PROJECT_STAGES = dockerfile_stages(ROOT / "Dockerfile")


def project_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from the project's own Dockerfile."""
    return {
        name: service
        for name, service in document["services"].items()
        if service.get("build", {}).get("context") == "."
    }


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is not None:
        assert isinstance(command, list), "commands are written in exec form"
        return [str(word) for word in command]
    cmd = stage_value(PROJECT_STAGES, service["build"]["target"], "CMD")
    assert cmd is not None
    return [str(word) for word in json.loads(cmd)]


def console_scripts() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "shared" / "pyproject.toml", *ROOT.glob("services/*/pyproject.toml")]:
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
        names |= set(project.get("scripts", {}))
    return names


# ---- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [BASE_FILE, *OVERRIDE_FILES, CLUSTER_FILE], ids=lambda p: p.name)
def test_files_follow_the_compose_specification(path: Path) -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text("utf-8"))
    jsonschema.Draft7Validator(schema).validate(untagged(load(path)))


def test_the_schema_check_would_catch_a_mistake() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text("utf-8"))
    broken = untagged(load(BASE_FILE))
    broken["services"]["order-consumer"]["stop_grace_perod"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="stop_grace_perod"):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_every_project_service_runs_a_command_the_project_installs() -> None:
    scripts = console_scripts()
    services = project_services(base())
    assert set(services) >= {*LONG_RUNNING, "producer", "cassandra-init", "pubsub-init"}
    for name, service in services.items():
        assert service["build"]["target"] in PROJECT_STAGES, name
        assert command_of(service)[0] in scripts, name


def test_project_services_run_under_an_init_that_forwards_signals() -> None:
    for name, service in project_services(base()).items():
        assert service.get("init") is True, name


def test_long_running_services_report_their_health() -> None:
    scripts = console_scripts()
    for name in LONG_RUNNING:
        target = base()["services"][name]["build"]["target"]
        healthcheck = stage_value(PROJECT_STAGES, target, "HEALTHCHECK")
        assert healthcheck is not None, name
        command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
        assert command[0] in scripts, name
    for name in ("producer", "cassandra-init", "pubsub-init"):
        target = base()["services"][name]["build"]["target"]
        assert stage_value(PROJECT_STAGES, target, "HEALTHCHECK") is None, name


def test_images_run_as_a_user_without_privileges() -> None:
    for name, service in project_services(base()).items():
        user = stage_value(PROJECT_STAGES, service["build"]["target"], "USER")
        assert user is not None, name
        assert user.split(":")[0] not in ("root", "0"), name


def settings_class(service: dict[str, Any]) -> type[BaseSettings]:
    return SETTINGS_OF_COMMAND[command_of(service)[0]]


def assert_variable_is_a_setting(model: type[BaseSettings], variable: str) -> None:
    section_name, _, field = variable.removeprefix("ECOM_").lower().partition("__")
    assert section_name in model.model_fields, variable
    section = model.model_fields[section_name].annotation
    assert isinstance(section, type), variable
    assert issubclass(section, BaseModel), variable
    assert field in section.model_fields, variable


@pytest.mark.parametrize("mode", MODES)
def test_every_variable_compose_sets_is_accepted_by_the_service(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = MODES[mode]()
    nodes = sorted(cassandra_nodes(document))
    host = {"ECOM_PUBSUB__PROJECT_ID": "my-project", "HOME": "/home/someone"}
    for name, service in project_services(document).items():
        model = settings_class(service)
        env = environment(service, host)
        with monkeypatch.context() as patch:
            for variable, value in env.items():
                if variable.startswith("ECOM_"):
                    assert_variable_is_a_setting(model, variable)
                else:
                    assert variable in CLIENT_VARIABLES, (name, variable)
                if value is not None:
                    patch.setenv(variable, value)
            settings = model()
        if isinstance(settings, StoreServiceSettings):
            assert sorted(settings.cassandra.contact_points) == nodes, name


def reads_pubsub(service: dict[str, Any]) -> bool:
    return "pubsub" in settings_class(service).model_fields


def test_what_must_differ_from_the_defaults_is_set() -> None:
    for name, service in project_services(base()).items():
        env = environment(service, {})
        if issubclass(settings_class(service), StoreServiceSettings):  # all but the producer
            assert env["ECOM_CASSANDRA__CONTACT_POINTS"] == '["cassandra"]', name
        if reads_pubsub(service):  # all but the DLQ worker and the report
            assert env["PUBSUB_EMULATOR_HOST"] == "pubsub-emulator:8085", name
        else:
            assert "PUBSUB_EMULATOR_HOST" not in env, name
    for name, service in project_services(gcp()).items():
        if name == "cassandra-init" or not reads_pubsub(service):
            continue
        env = environment(service, {"ECOM_PUBSUB__PROJECT_ID": "my-project"})
        assert env["PUBSUB_EMULATOR_HOST"] == "", name
        assert env["ECOM_PUBSUB__PROJECT_ID"] == "my-project", name


def test_gcp_mode_refuses_to_start_without_a_project() -> None:
    producer = gcp()["services"]["producer"]
    with pytest.raises(MissingVariableError, match="ECOM_PUBSUB__PROJECT_ID"):
        environment(producer, {})


def test_every_interpolated_variable_is_known() -> None:
    settings_variables = set()
    for model in set(SETTINGS_OF_COMMAND.values()):
        for section_name, field in model.model_fields.items():
            section = field.annotation
            assert isinstance(section, type)
            assert issubclass(section, BaseModel)
            settings_variables |= {
                f"ECOM_{section_name}__{name}".upper() for name in section.model_fields
            }
    for path in [BASE_FILE, *OVERRIDE_FILES, CLUSTER_FILE]:
        unknown = variables_used(path) - settings_variables - COMPOSE_VARIABLES
        assert not unknown, (path.name, unknown)


@pytest.mark.parametrize("mode", MODES)
def test_nothing_prevents_scaling(mode: str) -> None:
    document = MODES[mode]()
    for name, service in document["services"].items():
        assert "container_name" not in service, name
        if name != PUBLISHED and name not in MONITORING_PORTS:
            assert not service.get("ports"), (name, "a host port allows one container")
    for name in LONG_RUNNING:
        assert document["services"][name]["restart"] == "on-failure", name


@pytest.mark.parametrize("mode", MODES)
def test_the_report_is_published_on_this_machine_at_its_serving_port(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its page on 127.0.0.1 (it has no login) at a port a variable moves, mapped to the port
    the report serves on and ``ecom-health`` probes: ``ECOM_HTTP__PORT``, as no ``--port``
    is given."""
    service = MODES[mode]()["services"][PUBLISHED]
    (port,) = service["ports"]
    assert isinstance(port, str), "ports are written as HOST_IP:HOST_PORT:CONTAINER_PORT"
    assert interpolate(port, {}) == "127.0.0.1:8088:8000"
    assert interpolate(port, {PUBLISHED_PORT_VARIABLE: "18088"}) == "127.0.0.1:18088:8000"
    command = command_of(service)
    assert command[:2] == ["ecom-report", "serve"]
    assert "--port" not in command
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert float(command[command.index("--refresh") + 1]) > 0
    with monkeypatch.context() as patch:
        for variable, value in environment(service, {}).items():
            if value is not None:
                patch.setenv(variable, value)
        served = StoreServiceSettings().http.port
    assert port.rpartition(":")[2] == str(served)


def test_monitoring_is_published_on_this_machine_under_its_profiles() -> None:
    services = base()["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["grafana"]
    for name, (variable, container_port) in MONITORING_PORTS.items():
        (port,) = services[name]["ports"]
        assert interpolate(port, {}) == f"127.0.0.1:{container_port}:{container_port}", name
        assert interpolate(port, {variable: "19999"}) == f"127.0.0.1:19999:{container_port}"


def started_by_default(document: dict[str, Any]) -> set[str]:
    return {name for name, service in document["services"].items() if not service.get("profiles")}


@pytest.mark.parametrize("mode", MODES)
def test_services_wait_for_what_they_need(mode: str) -> None:
    document = MODES[mode]()
    services = document["services"]
    for name in started_by_default(document):
        for target, rule in services[name].get("depends_on", {}).items():
            assert target in started_by_default(document), (name, target)
            condition = rule["condition"]
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert services[target]["restart"] == "no", (name, target)


def test_gcp_mode_starts_no_emulator() -> None:
    document = gcp()
    assert "pubsub-emulator" not in started_by_default(document)
    assert "pubsub-init" not in started_by_default(document)
    assert "pubsub-emulator" in started_by_default(base())


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_consumers_may_drain_before_docker_kills_them() -> None:
    services = base()["services"]
    for name in ("order-consumer", "payment-consumer"):
        env = environment(services[name], {})
        budget = float(env["ECOM_CONSUMER__SHUTDOWN_GRACE_SECONDS"] or 0)
        assert 0 < budget < seconds(services[name]["stop_grace_period"]), name
    assert seconds(services["dlq-worker"]["stop_grace_period"]) >= 10


def dockerfile_default(path: Path, argument: str) -> str:
    match = re.search(rf"^ARG {argument}=(\S+)$", path.read_text(encoding="utf-8"), re.M)
    assert match, (path, argument)
    return match.group(1)


def test_base_images_are_pinned_and_agree_with_the_dockerfiles() -> None:
    services = base()["services"]
    python = interpolate(services["order-consumer"]["build"]["args"]["PYTHON_IMAGE"], {})
    assert python == dockerfile_default(ROOT / "Dockerfile", "PYTHON_IMAGE")
    emulator = services["pubsub-emulator"]["build"]["args"]["EMULATOR_BASE_IMAGE"]
    emulator_default = interpolate(emulator, {})
    assert emulator_default == dockerfile_default(
        ROOT / "pubsub-emulator" / "Dockerfile", "EMULATOR_BASE_IMAGE"
    )
    cassandra = interpolate(services["cassandra"]["image"], {})
    monitoring = [interpolate(services[name]["image"], {}) for name in MONITORING_PORTS]
    for image in (python, emulator_default, cassandra, *monitoring):
        name, _, tag = image.rpartition(":")
        assert name, image
        assert tag, image
        assert tag != "latest", image
    assert interpolate(services["cassandra"]["image"], {"CASSANDRA_IMAGE": "local/c:1"}) == (
        "local/c:1"
    )


def test_every_project_image_name_can_be_overridden() -> None:
    host = {"ECOM_IMAGE_PREFIX": "registry.example/team", "ECOM_IMAGE_TAG": "v1"}
    for name, service in project_services(base()).items():
        image = interpolate(service["image"], host)
        assert image.startswith("registry.example/team/"), name
        assert image.endswith(":v1"), name
    emulator = base()["services"]["pubsub-emulator"]["image"]
    assert interpolate(emulator, {"EMULATOR_IMAGE": "local/emu:1"}) == "local/emu:1"


def test_ecom_docker_checks_the_images_compose_uses() -> None:
    services = base()["services"]
    compose_defaults = {
        "PYTHON_IMAGE": interpolate(
            services["order-consumer"]["build"]["args"]["PYTHON_IMAGE"], {}
        ),
        "CASSANDRA_IMAGE": interpolate(services["cassandra"]["image"], {}),
        "EMULATOR_BASE_IMAGE": interpolate(
            services["pubsub-emulator"]["build"]["args"]["EMULATOR_BASE_IMAGE"], {}
        ),
        "PROMETHEUS_IMAGE": interpolate(services["prometheus"]["image"], {}),
    }
    assert {image.variable: image.reference for image in OFFICIAL_IMAGES} == compose_defaults
