"""Decision logic of ``ecom-docker``, with a fake image store: no engine or network needed.

Covers: which images get stand-ins (present, pullable, unreachable, forced); the input-digest
cache of stand-ins and of the Debian base; the apt mirror lookup; the engine and Compose
steps when things already work; the ``gcloud`` shim of the emulator stand-in (run for real
with a fake ``java``); and that the Cassandra stand-in's JVM options match the local ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from ecom_devtools.docker import cli as docker_cli
from ecom_devtools.docker import debian, dockerhost, rootfs
from ecom_devtools.docker.cli import OFFICIAL_IMAGES, DockerSetup
from ecom_devtools.docker.imagestore import ImageInfo
from ecom_devtools.docker.standins import (
    DIGEST_LABEL,
    StandIn,
    StandInBuilder,
    assemble_context,
    choose_images,
    inputs_digest,
)
from ecom_devtools.errors import InfraError
from ecom_devtools.local.cassandra import JVM_FLAGS
from ecom_devtools.local.process import pid_alive, read_cmdline
from tests.polling import eventually_blocking

REPO = Path(__file__).resolve().parents[3]
STAND_INS_DIR = REPO / "docker" / "stand-ins"
BASE = "test/debian:base"
PYTHON = "python:3.11-slim-bookworm"
CASSANDRA = "cassandra:5.0.9"
EMULATOR = "gcr.io/google.com/cloudsdktool/google-cloud-cli:528.0.0-emulators"
PROMETHEUS = "prom/prometheus:v2.42.0"


class FakeStore:
    """An image store in memory: images by reference, which ones a registry would serve."""

    def __init__(self, present: Sequence[str] = (), pullable: Sequence[str] = ()) -> None:
        self.images: dict[str, ImageInfo] = {ref: ImageInfo(f"id-{ref}") for ref in present}
        self.pullable = set(pullable)
        self.pulls: list[str] = []
        self.builds: list[str] = []
        self.build_args: dict[str, Mapping[str, str]] = {}
        self.contexts: dict[str, list[str]] = {}
        self.imports: list[tuple[Path, str, Sequence[str]]] = []
        self.in_use: set[str] = set()
        self.removed: list[str] = []

    def inspect(self, reference: str) -> ImageInfo | None:
        return self.images.get(reference)

    def pull(self, reference: str) -> bool:
        self.pulls.append(reference)
        if reference in self.pullable:
            self.images[reference] = ImageInfo(f"id-{reference}")
            return True
        return False

    def build(
        self, tag: str, context: Path, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        self.builds.append(tag)
        self.build_args[tag] = dict(build_args)
        self.contexts[tag] = sorted(
            str(path.relative_to(context)) for path in context.rglob("*") if path.is_file()
        )
        self.images[tag] = ImageInfo(f"id-{tag}-{len(self.builds)}", dict(labels))

    def remove(self, image_id: str) -> bool:
        if image_id in self.in_use:
            return False
        self.removed.append(image_id)
        return True

    def import_tarball(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        self.imports.append((tarball, tag, changes))
        label = next(c.split("=", 1)[1] for c in changes if c.startswith(f"LABEL {DIGEST_LABEL}"))
        self.images[tag] = ImageInfo(f"id-{tag}-import{len(self.imports)}", {DIGEST_LABEL: label})


@pytest.fixture
def dockerfiles(tmp_path: Path) -> Path:
    """Dockerfile folders for the five stand-ins, and one host file the Cassandra one copies."""
    root = tmp_path / "stand-ins"
    for name in ("python", "jre", "cassandra", "google-cloud-cli", "prometheus"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n# {name}\n")
    (root / "cassandra" / "entrypoint.sh").write_text("#!/bin/sh\n")
    jars = tmp_path / "host-lib"
    jars.mkdir()
    (jars / "cassandra-all.jar").write_bytes(b"jar v1")
    return root


def _stand_ins(dockerfiles: Path) -> list[StandIn]:
    jars = dockerfiles.parent / "host-lib"
    return [
        StandIn("python", "s/python", None),
        StandIn("jre", "s/jre", "python"),
        StandIn("cassandra", "s/cassandra", "jre", lambda: {"lib": jars}),
        StandIn("google-cloud-cli", "s/gcloud", "jre"),
        StandIn("prometheus", "s/prometheus", None),
    ]


def _builder(store: FakeStore, dockerfiles: Path, bases: list[str]) -> StandInBuilder:
    def base_image() -> str:
        bases.append(BASE)
        store.images.setdefault(BASE, ImageInfo("id-base"))
        return BASE

    return StandInBuilder(
        store,
        _stand_ins(dockerfiles),
        dockerfiles_dir=dockerfiles,
        work_dir=dockerfiles.parent / "contexts",
        base_image=base_image,
        say=lambda _message: None,
    )


def _choose(store: FakeStore, builder: StandInBuilder, *, force: bool = False) -> dict[str, str]:
    return choose_images(
        store, OFFICIAL_IMAGES, builder.ensure, force_stand_ins=force, say=lambda _m: None
    )


# --- which images get stand-ins -------------------------------------------------------------


def test_official_images_present_locally_are_used_without_pulling_or_building(
    dockerfiles: Path,
) -> None:
    store = FakeStore(present=[PYTHON, CASSANDRA, EMULATOR, PROMETHEUS])
    bases: list[str] = []
    chosen = _choose(store, _builder(store, dockerfiles, bases))
    assert chosen == {
        "PYTHON_IMAGE": PYTHON,
        "CASSANDRA_IMAGE": CASSANDRA,
        "EMULATOR_BASE_IMAGE": EMULATOR,
        "PROMETHEUS_IMAGE": PROMETHEUS,
    }
    assert store.pulls == []
    assert store.builds == []
    assert bases == []


def test_missing_images_are_pulled_when_a_registry_serves_them(dockerfiles: Path) -> None:
    store = FakeStore(present=[PYTHON], pullable=[CASSANDRA, EMULATOR, PROMETHEUS])
    chosen = _choose(store, _builder(store, dockerfiles, []))
    assert chosen["CASSANDRA_IMAGE"] == CASSANDRA
    assert chosen["EMULATOR_BASE_IMAGE"] == EMULATOR
    assert chosen["PROMETHEUS_IMAGE"] == PROMETHEUS
    assert store.pulls == [CASSANDRA, EMULATOR, PROMETHEUS]
    assert store.builds == []


def test_unpullable_image_gets_a_stand_in_built_on_its_parents(dockerfiles: Path) -> None:
    store = FakeStore(present=[PYTHON], pullable=[EMULATOR, PROMETHEUS])
    bases: list[str] = []
    chosen = _choose(store, _builder(store, dockerfiles, bases))
    assert chosen == {
        "PYTHON_IMAGE": PYTHON,  # the official one stays: only Cassandra is replaced
        "CASSANDRA_IMAGE": "s/cassandra",
        "EMULATOR_BASE_IMAGE": EMULATOR,
        "PROMETHEUS_IMAGE": PROMETHEUS,
    }
    assert store.builds == ["s/python", "s/jre", "s/cassandra"]
    assert store.build_args["s/python"] == {"BASE_IMAGE": BASE}
    assert store.build_args["s/cassandra"] == {"BASE_IMAGE": "s/jre"}
    assert store.contexts["s/cassandra"] == ["Dockerfile", "entrypoint.sh", "lib/cassandra-all.jar"]
    assert bases == [BASE]


def test_no_registry_builds_every_stand_in_and_shared_parents_once(dockerfiles: Path) -> None:
    store = FakeStore()
    bases: list[str] = []
    chosen = _choose(store, _builder(store, dockerfiles, bases))
    assert chosen == {
        "PYTHON_IMAGE": "s/python",
        "CASSANDRA_IMAGE": "s/cassandra",
        "EMULATOR_BASE_IMAGE": "s/gcloud",
        "PROMETHEUS_IMAGE": "s/prometheus",
    }
    assert store.pulls == [PYTHON, CASSANDRA, EMULATOR, PROMETHEUS]
    assert store.builds == ["s/python", "s/jre", "s/cassandra", "s/gcloud", "s/prometheus"]
    assert store.build_args["s/prometheus"] == {"BASE_IMAGE": BASE}
    assert bases == [BASE]


def test_forced_stand_ins_replace_even_present_images(dockerfiles: Path) -> None:
    store = FakeStore(present=[PYTHON, CASSANDRA, EMULATOR, PROMETHEUS])
    chosen = _choose(store, _builder(store, dockerfiles, []), force=True)
    assert set(chosen.values()) == {"s/python", "s/cassandra", "s/gcloud", "s/prometheus"}
    assert store.pulls == []


def test_setup_reports_only_replaced_images_as_overrides() -> None:
    setup = DockerSetup(
        server_version="20.10.24",
        compose_version="2.32.4",
        images={"PYTHON_IMAGE": PYTHON, "CASSANDRA_IMAGE": "s/cassandra"},
        overrides={"CASSANDRA_IMAGE": "s/cassandra", "EMULATOR_BASE_IMAGE": "s/gcloud"},
        dockerd_pid=None,
    )
    assert setup.env_lines() == "CASSANDRA_IMAGE=s/cassandra\nEMULATOR_BASE_IMAGE=s/gcloud\n"
    env = setup.compose_env({"PATH": "/bin", "CASSANDRA_IMAGE": "old"})
    assert env == {
        "PATH": "/bin",
        "CASSANDRA_IMAGE": "s/cassandra",
        "EMULATOR_BASE_IMAGE": "s/gcloud",
    }


def test_up_prints_the_overrides_and_writes_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = DockerSetup(
        server_version="20.10.24",
        compose_version="2.32.4",
        images={"PYTHON_IMAGE": "s/python"},
        overrides={"PYTHON_IMAGE": "s/python"},
        dockerd_pid=None,
    )
    calls: list[bool] = []

    def fake_ensure_docker(*, force_stand_ins: bool) -> DockerSetup:
        calls.append(force_stand_ins)
        return setup

    monkeypatch.setattr(docker_cli, "ensure_docker", fake_ensure_docker)
    env_file = tmp_path / "docker.env"
    assert docker_cli.main(["up", "--env-file", str(env_file), "--stand-ins"]) == 0
    assert calls == [True]
    assert env_file.read_text() == "PYTHON_IMAGE=s/python\n"
    assert capsys.readouterr().out == "PYTHON_IMAGE=s/python\n"


def test_errors_exit_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(*, force_stand_ins: bool) -> DockerSetup:
        raise InfraError("dockerd exited during start-up")

    monkeypatch.setattr(docker_cli, "ensure_docker", failing)
    assert docker_cli.main(["up"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "ecom-docker: error: dockerd exited during start-up\n",
    )


# --- input-digest caching -------------------------------------------------------------------


def _all_stand_ins(store: FakeStore, dockerfiles: Path) -> list[str]:
    """Run a fresh builder (as a new ``ecom-docker up`` would); return what it built."""
    builder = _builder(store, dockerfiles, [])
    for name in ("cassandra", "google-cloud-cli"):
        builder.ensure(name)
    return builder.built


def test_unchanged_inputs_are_not_rebuilt(dockerfiles: Path) -> None:
    store = FakeStore()
    assert _all_stand_ins(store, dockerfiles) == ["s/python", "s/jre", "s/cassandra", "s/gcloud"]
    assert _all_stand_ins(store, dockerfiles) == []
    assert store.images["s/cassandra"].labels[DIGEST_LABEL]


def test_changed_dockerfile_rebuilds_it_and_what_is_built_on_it(dockerfiles: Path) -> None:
    store = FakeStore()
    _all_stand_ins(store, dockerfiles)
    (dockerfiles / "jre" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n# v2\n")
    assert _all_stand_ins(store, dockerfiles) == ["s/jre", "s/cassandra", "s/gcloud"]


def test_replaced_images_are_removed_children_first_unless_in_use(dockerfiles: Path) -> None:
    store = FakeStore()
    _all_stand_ins(store, dockerfiles)
    old = {tag: store.images[tag].id for tag in ("s/jre", "s/cassandra", "s/gcloud")}
    store.in_use.add(old["s/gcloud"])  # a container still runs the old emulator image
    (dockerfiles / "jre" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n# v2\n")
    builder = _builder(store, dockerfiles, [])
    for name in ("cassandra", "google-cloud-cli"):
        builder.ensure(name)
    assert builder.remove_replaced() == [old["s/cassandra"], old["s/jre"]]
    assert store.removed == [old["s/cassandra"], old["s/jre"]]
    assert builder.remove_replaced() == []


def test_changed_host_input_rebuilds_only_its_stand_in(dockerfiles: Path) -> None:
    store = FakeStore()
    _all_stand_ins(store, dockerfiles)
    (dockerfiles.parent / "host-lib" / "cassandra-all.jar").write_bytes(b"jar v2")
    assert _all_stand_ins(store, dockerfiles) == ["s/cassandra"]


def test_lost_or_relabelled_image_is_rebuilt(dockerfiles: Path) -> None:
    store = FakeStore()
    _all_stand_ins(store, dockerfiles)
    del store.images["s/gcloud"]
    store.images["s/cassandra"] = ImageInfo("id-other", {DIGEST_LABEL: "stale"})
    assert _all_stand_ins(store, dockerfiles) == ["s/cassandra", "s/gcloud"]


def test_digest_covers_names_contents_executable_bits_and_params(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    first = inputs_digest({"run.sh": script}, {"BASE_IMAGE": "a"})
    assert inputs_digest({"run.sh": script}, {"BASE_IMAGE": "a"}) == first
    assert inputs_digest({"other.sh": script}, {"BASE_IMAGE": "a"}) != first
    assert inputs_digest({"run.sh": script}, {"BASE_IMAGE": "b"}) != first
    script.chmod(0o755)
    assert inputs_digest({"run.sh": script}, {"BASE_IMAGE": "a"}) != first


def test_digest_of_a_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="does not exist"):
        inputs_digest({"lib": tmp_path / "absent"}, {})


def test_context_gets_files_and_folders_under_their_names(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "a.jar").write_bytes(b"A")
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    context = tmp_path / "context"
    assemble_context({"lib": tmp_path / "src", "Dockerfile": tmp_path / "Dockerfile"}, context)
    assert (context / "lib" / "sub" / "a.jar").read_bytes() == b"A"
    assert (context / "Dockerfile").read_text() == "FROM x\n"


def test_base_image_is_reimported_from_the_cached_tarball_only_when_outdated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FakeStore()
    imported: list[Path] = []
    for mirror in ("http://one.invalid/debian", "http://one.invalid/debian", "http://two.invalid"):
        monkeypatch.setenv(debian.MIRROR_ENV, mirror)
        tarball = rootfs.tarball_path(tmp_path, mirror)
        tarball.parent.mkdir(exist_ok=True)
        tarball.write_bytes(b"cached rootfs")  # so debootstrap is never run
        assert rootfs.ensure_base_image(store, tmp_path, lambda _m: None) == rootfs.BASE_TAG
        imported = [path for path, _tag, _changes in store.imports]
    one, two = rootfs.tarball_path(tmp_path, "http://one.invalid/debian"), tarball
    assert one != two
    assert imported == [one, two]  # the same mirror again: up to date, not re-imported
    assert (
        f"LABEL {DIGEST_LABEL}={rootfs.rootfs_digest('http://two.invalid')}" in store.imports[1][2]
    )


# --- the apt mirror -------------------------------------------------------------------------

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_stanzas_are_parsed() -> None:
    sources = debian.parse_deb822(DEB822)
    assert [(s.uri, s.suites) for s in sources] == [
        ("http://deb.example/debian", ("bookworm", "bookworm-updates")),
        ("http://deb.example/debian-security", ("bookworm-security",)),
    ]


def test_deb822_skips_source_only_and_disabled_stanzas_and_joins_folded_fields() -> None:
    text = (
        "Types: deb-src\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nEnabled: no\nURIs: http://b.example/debian\nSuites: bookworm\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://c.example/debian\n http://d.example/debian\n"
        "Suites: bookworm\nComponents: main contrib\n"
    )
    assert [s.uri for s in debian.parse_deb822(text)] == [
        "http://c.example/debian",
        "http://d.example/debian",
    ]


def test_one_line_sources_with_options_and_comments() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://opt.example/debian bookworm main  # note\n"
        "deb https://vendor.example/apt cloud-sdk-bookworm main\n"
    )
    sources = debian.parse_one_line(text)
    assert [(s.uri, s.suites, s.components) for s in sources] == [
        ("http://opt.example/debian", ("bookworm",), ("main",)),
        ("https://vendor.example/apt", ("cloud-sdk-bookworm",), ("main",)),
    ]


def test_mirror_is_the_debian_archive_not_security_or_a_vendor() -> None:
    sources = [
        *debian.parse_one_line("deb https://vendor.example/apt cloud-sdk-bookworm main\n"),
        *reversed(debian.parse_deb822(DEB822)),
    ]
    assert debian.pick_mirror(sources, "bookworm") == "http://deb.example/debian"
    assert debian.pick_mirror(sources, "trixie") is None


def test_mirror_is_read_from_the_files_apt_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "vendor.list.disabled-by-farm").write_text("deb http://off.example/d bookworm main\n")
    (parts / "debian.sources").write_text(DEB822)
    monkeypatch.setattr(debian, "host_codename", lambda: "bookworm")
    assert debian.debian_mirror(tmp_path) == "http://deb.example/debian"
    monkeypatch.setenv(debian.MIRROR_ENV, "http://chosen.example/debian/")
    assert debian.debian_mirror(tmp_path) == "http://chosen.example/debian"


def test_no_debian_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(debian.MIRROR_ENV, raising=False)
    (tmp_path / "sources.list").write_text("deb https://vendor.example/apt cloud-sdk-x main\n")
    with pytest.raises(InfraError, match=debian.MIRROR_ENV):
        debian.debian_mirror(tmp_path)


# --- engine and Compose when they already work ----------------------------------------------


def test_an_answering_engine_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dockerhost, "server_version", lambda: "28.0.1")

    def no_install(packages: Sequence[str], say: object) -> None:
        raise AssertionError(f"must not install {packages}")

    monkeypatch.setattr(dockerhost, "apt_install", no_install)
    engine = dockerhost.ensure_engine(dockerhost.DockerdFiles(tmp_path), lambda _m: None)
    assert engine == dockerhost.Engine("28.0.1", dockerd_pid=None, started_now=False)


def test_a_silent_remote_engine_is_not_replaced_by_a_local_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dockerhost, "server_version", lambda: None)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.9:2375")
    with pytest.raises(InfraError, match="DOCKER_HOST"):
        dockerhost.ensure_engine(dockerhost.DockerdFiles(tmp_path), lambda _m: None)
    assert not (tmp_path / "dockerd.pid").exists()


def _sleeper(*args: str) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)", *args]


def test_down_stops_only_the_dockerd_recorded_with_our_marker(tmp_path: Path) -> None:
    files = dockerhost.DockerdFiles(tmp_path)
    stranger = subprocess.Popen(_sleeper())  # a process that reused a recorded pid
    try:
        eventually_blocking(lambda: read_cmdline(stranger.pid) is not None, 10)  # /proc lags
        files.pid_file.write_text(f"{stranger.pid}\n")
        assert dockerhost.stop_dockerd(files) is None
        assert stranger.poll() is None  # not signalled: its arguments lack the marker
    finally:
        stranger.kill()
        stranger.wait()
    argv = _sleeper(dockerhost.DOCKERD_MARKER)
    ours = files.process().spawn_detached(argv, dict(os.environ), files.log, tmp_path)
    assert files.pid_file.read_text().strip() == str(ours)
    with pytest.raises(ChildProcessError):
        os.waitpid(ours, os.WNOHANG)  # detached: not our child, nothing for us to reap
    eventually_blocking(lambda: files.process().pid == ours, 10)
    assert dockerhost.stop_dockerd(files) == ours  # found through the pid file alone
    assert not pid_alive(ours)
    assert files.process().pid is None
    assert not files.pid_file.exists()


def test_stale_daemon_pid_file_is_removed_but_a_live_dockerd_is_reported(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "docker.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # reused by a process that is not dockerd
    dockerhost.clear_stale_daemon_pid(pid_file)
    assert not pid_file.exists()
    dockerhost.clear_stale_daemon_pid(pid_file)  # no file: nothing to do
    fake = subprocess.Popen(["bash", "-c", "exec -a dockerd sleep 60"])
    try:
        eventually_blocking(lambda: (read_cmdline(fake.pid) or [""])[0] == "dockerd", 10)
        pid_file.write_text(f"{fake.pid}\n")
        with pytest.raises(InfraError, match="does not answer"):
            dockerhost.clear_stale_daemon_pid(pid_file)
        assert pid_file.exists()
    finally:
        fake.kill()
        fake.wait()


def test_cached_compose_binary_is_installed_as_the_cli_plugin_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([None, "2.32.4"])
    monkeypatch.setattr(dockerhost, "compose_version", lambda: next(answers))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no go to build with
    cached = tmp_path / "cache" / "compose" / dockerhost.COMPOSE_VERSION / "cmd"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x7fELF compose")
    assert dockerhost.ensure_compose(tmp_path / "cache", lambda _m: None) == "2.32.4"
    plugin = tmp_path / "docker-config" / "cli-plugins" / "docker-compose"
    assert plugin.read_bytes() == b"\x7fELF compose"
    assert os.access(plugin, os.X_OK)


# --- the gcloud shim of the emulator stand-in -----------------------------------------------

GCLOUD = STAND_INS_DIR / "google-cloud-cli" / "gcloud"


@pytest.fixture
def shim_env(tmp_path: Path) -> dict[str, str]:
    """A fake ``java`` that prints its arguments, and a fake emulator component."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    java.chmod(0o755)
    lib = tmp_path / "pubsub-emulator" / "lib"
    lib.mkdir(parents=True)
    (lib / "cloud-pubsub-emulator-0.8.20-all.jar").write_bytes(b"")
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PUBSUB_EMULATOR_DIR": str(tmp_path / "pubsub-emulator"),
    }


def _gcloud(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(GCLOUD), *args], capture_output=True, text=True, env=dict(env), check=False
    )


def test_gcloud_shim_execs_the_emulator_jar_with_host_and_port(shim_env: dict[str, str]) -> None:
    done = _gcloud(shim_env, "beta", "emulators", "pubsub", "start", "--host-port=0.0.0.0:8085")
    assert done.returncode == 0, done.stderr
    jar = f"{shim_env['PUBSUB_EMULATOR_DIR']}/lib/cloud-pubsub-emulator-0.8.20-all.jar"
    assert done.stdout.splitlines() == ["-jar", jar, "--host=0.0.0.0", "--port=8085"]


def test_gcloud_shim_accepts_a_project_and_splits_java_opts(shim_env: dict[str, str]) -> None:
    env = {**shim_env, "JAVA_OPTS": "-Xmx256m -Dx=1"}
    done = _gcloud(
        env, "beta", "emulators", "pubsub", "start", "--project=p1", "--host-port", "[::]:9001"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["-Xmx256m", "-Dx=1", "-jar"]
    assert done.stdout.splitlines()[-2:] == ["--host=::", "--port=9001"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["info"], "unsupported command: gcloud info"),
        (["emulators", "pubsub", "start", "--host-port=h:1"], "unsupported command"),
        (["beta", "emulators", "datastore", "start"], "unsupported command"),
        (["beta", "emulators", "pubsub", "start"], "--host-port=HOST:PORT is required"),
        (["beta", "emulators", "pubsub", "start", "--host-port=h"], "must be HOST:PORT"),
        (["beta", "emulators", "pubsub", "start", "--host-port=h:80x"], "bad port"),
        (
            ["beta", "emulators", "pubsub", "start", "--host-port=h:1", "--data-dir=/d"],
            "--data-dir",
        ),
    ],
)
def test_gcloud_shim_refuses_anything_else(
    shim_env: dict[str, str], args: list[str], reason: str
) -> None:
    done = _gcloud(shim_env, *args)
    assert done.returncode == 2
    assert reason in done.stderr
    assert done.stdout == ""  # java never ran


def test_gcloud_shim_says_when_the_jar_is_missing(shim_env: dict[str, str], tmp_path: Path) -> None:
    env = {**shim_env, "PUBSUB_EMULATOR_DIR": str(tmp_path / "nowhere")}
    done = _gcloud(env, "beta", "emulators", "pubsub", "start", "--host-port=h:1")
    assert done.returncode == 2
    assert "jar is missing" in done.stderr


# --- the Cassandra stand-in -----------------------------------------------------------------


def test_cassandra_stand_in_jvm_options_match_the_local_cassandra_flags() -> None:
    text = (STAND_INS_DIR / "cassandra" / "jvm17.options").read_text()
    words = [
        word for line in text.splitlines() if not line.startswith("#") for word in line.split()
    ]
    assert words == list(JVM_FLAGS)


def test_stand_in_dockerfiles_name_no_package_host() -> None:
    for dockerfile in STAND_INS_DIR.glob("*/Dockerfile"):
        text = dockerfile.read_text()
        assert "FROM ${BASE_IMAGE}" in text, dockerfile
        assert "http" not in text, dockerfile
        assert "--mount" not in text, dockerfile  # the legacy builder has no RUN --mount


# --- the Cassandra stand-in's entry point (run with fake hostname, id and java) -------------

ENTRYPOINT = STAND_INS_DIR / "cassandra" / "docker-entrypoint.sh"


@pytest.fixture
def entrypoint_env(tmp_path: Path) -> dict[str, str]:
    """A container-like environment: two addresses, a non-root user, a java that echoes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {
        "hostname": 'echo "127.0.1.1 172.18.0.5"',
        "id": "echo 999",
        "java": 'for a in "$@"; do printf "%s\\n" "$a"; done',
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    conf = tmp_path / "conf"
    conf.mkdir()
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "CASSANDRA_CONF": str(conf)}


def _entrypoint(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=dict(env), check=False
    )


def test_entrypoint_defaults_to_the_containers_own_address(entrypoint_env: dict[str, str]) -> None:
    done = _entrypoint(entrypoint_env)
    assert done.returncode == 0, done.stderr
    conf = Path(entrypoint_env["CASSANDRA_CONF"])
    yaml = (conf / "cassandra.yaml").read_text()
    for line in (
        "cluster_name: 'Test Cluster'",
        "num_tokens: 16",
        "endpoint_snitch: 'SimpleSnitch'",
        "listen_address: '172.18.0.5'",
        "broadcast_address: '172.18.0.5'",
        "rpc_address: '0.0.0.0'",
        "broadcast_rpc_address: '172.18.0.5'",
        "    parameters: [{seeds: '172.18.0.5'}]",
        "data_file_directories: [/var/lib/cassandra/data]",
    ):
        assert line in yaml.splitlines(), line
    assert (conf / "cassandra-rackdc.properties").read_text().startswith("dc=dc1\nrack=rack1\n")
    args = done.stdout.splitlines()
    assert args[0] == f"@{conf}/jvm17.options"
    assert {"-Xms1G", "-Xmx1G", "-Dcassandra-foreground=yes"} <= set(args)
    assert args[-1] == "org.apache.cassandra.service.CassandraDaemon"


def test_entrypoint_reads_the_official_images_variables(entrypoint_env: dict[str, str]) -> None:
    env = {
        **entrypoint_env,
        "CASSANDRA_CLUSTER_NAME": "ecom's test",
        "CASSANDRA_SEEDS": "node1,node2",
        "CASSANDRA_NUM_TOKENS": "4",
        "CASSANDRA_ENDPOINT_SNITCH": "GossipingPropertyFileSnitch",
        "CASSANDRA_DC": "eu1",
        "CASSANDRA_RACK": "r2",
        "MAX_HEAP_SIZE": "512M",
        "HEAP_NEWSIZE": "100M",
        "JVM_EXTRA_OPTS": "-Dcassandra.ring_delay_ms=3000 -Dx=y",
    }
    done = _entrypoint(env, "cassandra", "-f")
    assert done.returncode == 0, done.stderr
    conf = Path(entrypoint_env["CASSANDRA_CONF"])
    yaml = (conf / "cassandra.yaml").read_text().splitlines()
    assert "cluster_name: 'ecom''s test'" in yaml  # quoted as YAML
    assert "    parameters: [{seeds: 'node1,node2'}]" in yaml
    assert "num_tokens: 4" in yaml
    assert "endpoint_snitch: 'GossipingPropertyFileSnitch'" in yaml
    assert (conf / "cassandra-rackdc.properties").read_text().startswith("dc=eu1\nrack=r2\n")
    args = done.stdout.splitlines()
    assert {"-Xms512M", "-Xmx512M", "-Dcassandra.ring_delay_ms=3000", "-Dx=y"} <= set(args)
    assert not any(arg.startswith("-Xmn") for arg in args)  # HEAP_NEWSIZE: ignored under G1


def test_entrypoint_runs_other_commands_as_given(entrypoint_env: dict[str, str]) -> None:
    done = _entrypoint(entrypoint_env, "echo", "cqlsh", "here")
    assert (done.returncode, done.stdout) == (0, "cqlsh here\n")
    assert not (Path(entrypoint_env["CASSANDRA_CONF"]) / "cassandra.yaml").exists()


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (["cassandra", "-p", "pidfile"], {}, "unsupported cassandra option: -p"),
        ([], {"CASSANDRA_NUM_TOKENS": "many"}, "CASSANDRA_NUM_TOKENS must be a number"),
    ],
)
def test_entrypoint_refuses_what_it_cannot_honour(
    entrypoint_env: dict[str, str], args: list[str], env: dict[str, str], reason: str
) -> None:
    done = _entrypoint({**entrypoint_env, **env}, *args)
    assert done.returncode == 2
    assert reason in done.stderr
    assert done.stdout == ""  # java never ran
