"""docker-compose.yaml as `docker-compose config` resolves it: every service of the deployment, Airflow on
PostgreSQL, a GPU for Triton, no secret in the repository and a loud failure without one, and Prometheus and
Grafana configurations that load. Needs Debian's docker-compose (v1), which resolves a file without an engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from flywheel import config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SERVICES = (
    *AIRFLOW_SERVICES,
    *("postgres", "redis", "gateway", "triton", "prometheus", "pushgateway", "grafana"),
)
#: A required value: compose fails on `${NAME:?message}` when NAME is unset or empty, printing the message.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")
#: Environment keys that hold secrets by their name.
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|REDISCLI_AUTH")


def _example_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.lstrip().startswith("#")}


@pytest.fixture(scope="module")
def compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.skip(
            "docker-compose is not on PATH: run `make system-deps` (scripts/system-deps.sh installs it)"
        )
    return path


def compose_config(compose: str, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with exactly ``env`` as its env file. The process environment is scrubbed
    (compose lets it override the file), and ``--env-file`` makes compose ignore a developer's real .env."""
    env_file = workdir / f"env-{uuid.uuid4().hex[:8]}"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return subprocess.run(
        [compose, "--file", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        env={"PATH": os.environ["PATH"], "HOME": str(workdir)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def sentinels() -> dict[str, str]:
    """A distinct value per secret, so that every place a secret lands in the config can be traced."""
    return {name: f"sentinel{index}x{uuid.uuid4().hex[:12]}" for index, name in enumerate(SECRETS)}


@pytest.fixture(scope="module")
def resolved(compose: str, sentinels: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The configuration compose would run: .env.example's values, the secrets replaced by sentinels."""
    done = compose_config(compose, _example_env() | sentinels, tmp_path_factory.mktemp("compose"))
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    return yaml.safe_load(done.stdout)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # compose accepts both forms
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif node is not None:
        yield str(node)


#: The compose file's values as written (comments left out, anchors expanded), before any interpolation.
WRITTEN = "\n".join(_strings(yaml.safe_load(COMPOSE_FILE.read_text())))
#: The secrets: every variable the compose file requires, each of which .env.example must document.
SECRETS = sorted(set(REQUIRED.findall(WRITTEN)))


def _mounts(service: dict) -> dict[PurePosixPath, Path]:
    """Bind mounts of ``service``: container path -> host path (named volumes left out)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):  # the long syntax
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = volume.split(":")[:2]
        if source.startswith("/"):  # compose resolves relative host paths against the file's folder
            mounts[PurePosixPath(target)] = Path(source)
    return mounts


def _host_path(service: dict, container_path: PurePosixPath) -> Path | None:
    """Where ``container_path`` comes from on the host: a mount of the file or of a folder above it."""
    for target, source in _mounts(service).items():
        if container_path == target or target in container_path.parents:
            return source / container_path.relative_to(target)
    return None


def test_every_service_of_the_deployment_is_defined(resolved: dict) -> None:
    missing = sorted(set(SERVICES) - set(resolved["services"]))
    assert not missing, f"docker-compose.yaml lacks the services {missing}"


def test_airflow_and_the_gateway_run_the_project_image(resolved: dict) -> None:
    for name in (*AIRFLOW_SERVICES, "gateway"):
        build = resolved["services"][name].get("build", {})
        assert Path(build.get("context", "")) == ROOT, f"{name} is not built from the repository root"
        assert build.get("dockerfile") == "images/airflow/Dockerfile", f"{name}: {build}"
        assert (ROOT / build["dockerfile"]).is_file()
    gateway = resolved["services"]["gateway"]
    assert gateway["command"][:2] == ["flywheel", "serve"], gateway["command"]
    assert gateway["command"][gateway["command"].index("--host") + 1] == "0.0.0.0", (
        "unreachable from Prometheus"
    )


def test_airflow_runs_on_the_postgres_metadata_database(resolved: dict, sentinels: dict[str, str]) -> None:
    services = resolved["services"]
    for name in AIRFLOW_SERVICES:
        conn = _environment(services[name]).get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        url = urlsplit(conn)
        assert url.scheme.startswith("postgresql"), f"{name} does not use PostgreSQL: {conn!r}"
        assert url.hostname in services, f"{name}: {url.hostname} is not a service of the file"
        assert services[url.hostname]["image"].startswith("postgres:"), f"{name}: {url.hostname}"
        assert url.password == sentinels["AIRFLOW_DB_PASSWORD"], f"{name}: the password is not from .env"
        # Without the database up, and the schema migrated, an Airflow component only crash-loops.
        waits = services[name].get("depends_on", {})
        assert waits.get(url.hostname, {}).get("condition") == "service_healthy", f"{name}: {waits}"
        if name != "airflow-init":
            assert waits.get("airflow-init", {}).get("condition") == "service_completed_successfully"
    assert "healthcheck" in services["postgres"]
    warehouse = urlsplit(_environment(services["airflow-scheduler"])["FLYWHEEL_WAREHOUSE_URL"])
    assert warehouse.scheme.startswith("postgresql") and warehouse.hostname == "postgres", warehouse


def test_init_creates_the_pools_the_dags_use(resolved: dict) -> None:
    script = " ".join(resolved["services"]["airflow-init"]["command"])
    created = set(re.findall(r"airflow pools set (\w+)", script))
    used = {
        pool
        for dag_file in (ROOT / "dags").glob("*.py")
        for pool in re.findall(r"""pool=["'](\w+)["']""", dag_file.read_text())
    }
    assert used, "no pool found in dags/: the pattern no longer matches how DAGs name pools"
    assert used <= created, (
        f"airflow-init does not create the pools {sorted(used - created)}: tasks would hang"
    )
    assert "airflow db migrate" in script


def test_triton_reserves_a_gpu(resolved: dict) -> None:
    triton = resolved["services"]["triton"]
    assert triton.get("build", {}).get("dockerfile") == "images/triton/Dockerfile"
    devices = triton.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices


def test_only_variables_flywheel_and_airflow_read_are_set(resolved: dict) -> None:
    from airflow.configuration import conf

    options = conf.configuration_description
    names = {key for service in resolved["services"].values() for key in _environment(service)}
    names |= set(re.findall(r"\b(?:FLYWHEEL|AIRFLOW_)_\w+", (ROOT / "images/airflow/Dockerfile").read_text()))
    flywheel = {name for name in names if name.startswith("FLYWHEEL_")}
    assert not flywheel - set(config.VARIABLES), (
        f"no such flywheel setting: {sorted(flywheel - set(config.VARIABLES))}"
    )
    for name in (n for n in names if n.startswith("AIRFLOW__")):
        _, section, key = name.lower().split("__", 2)
        assert key in options.get(section, {}).get("options", {}), f"Airflow 3.3.2 has no option {name}"


def test_no_secret_is_written_in_the_repository(resolved: dict, sentinels: dict[str, str]) -> None:
    example = _example_env()
    undocumented = sorted(set(SECRETS) - set(example))
    assert not undocumented, f".env.example does not document {undocumented}"
    # A secret .env.example asks for that compose does not require could be written into the file instead.
    optional = sorted(set(example) - set(SECRETS) - {"COMPOSE_PROJECT_NAME"})
    assert not optional, f"docker-compose.yaml does not require {optional} with `:?`"
    for name in SECRETS:
        # A default (${NAME:-x}) would be a committed secret, and would hide a forgotten one.
        references = re.findall(rf"(?<!\$)\$\{{?{name}\b[^}}\s]*", WRITTEN)
        loose = [ref for ref in references if not ref.startswith(f"${{{name}:?")]
        assert not loose, f"{name} is referenced without `:?` in docker-compose.yaml: {loose}"
    allowed = set(sentinels.values())
    for service_name, service in resolved["services"].items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key) and not key.endswith("_FILE"):  # a _FILE names where one is
                assert value in allowed, f"{service_name}: {key} is not taken from .env"
        for text in _strings(service):
            password = urlsplit(text).password if "://" in text else None
            assert password in (None, *allowed), f"{service_name}: a password written in a URL: {text}"
        command = [str(part) for part in service.get("command", []) or []]
        for flag, value in zip(command, command[1:], strict=False):
            if flag in ("--requirepass", "--password"):
                assert value in allowed, f"{service_name}: {flag} is not taken from .env"
    unused = sorted(name for name, value in sentinels.items() if value not in json.dumps(resolved))
    assert not unused, f"secrets required but used nowhere: {unused}"
    if (ROOT / ".git").exists() and shutil.which("git"):
        ignored = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=ROOT, check=False)
        assert ignored.returncode == 0, ".env is not git-ignored: a `git add .` would commit the secrets"


def test_without_the_env_file_compose_refuses_to_start(compose: str, tmp_path: Path) -> None:
    done = compose_config(compose, {}, tmp_path)
    assert done.returncode != 0, "docker-compose config passed without any secret"
    assert any(f"set {name} in .env" in done.stderr for name in SECRETS), done.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_a_missing_secret_is_named(compose: str, secret: str, tmp_path: Path) -> None:
    env = {name: value for name, value in _example_env().items() if name != secret}
    done = compose_config(compose, env, tmp_path)
    assert done.returncode != 0, f"docker-compose config passed without {secret}"
    assert f"set {secret} in .env" in done.stderr, done.stderr
    empty = compose_config(compose, env | {secret: ""}, tmp_path)
    assert empty.returncode != 0 and secret in empty.stderr, f"an empty {secret} passed: {empty.stderr}"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH: run `make system-deps` (Debian package prometheus)")
    return path


def test_prometheus_loads_its_config_and_rules(resolved: dict, promtool: str) -> None:
    prometheus = resolved["services"]["prometheus"]
    flag = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    config_path = PurePosixPath(flag.split("=", 1)[1])
    source = _host_path(prometheus, config_path)
    assert source is not None and source.is_file(), f"nothing of the repository is mounted at {config_path}"
    checked = subprocess.run(
        [promtool, "check", "config", str(source)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    scrape = yaml.safe_load(source.read_text())
    # promtool resolves rule files beside the host file; Prometheus, beside the mounted one.
    for pattern in scrape.get("rule_files", []):
        rules = _host_path(prometheus, config_path.parent / pattern)
        assert rules is not None and rules.is_file(), f"{pattern} is not mounted beside {config_path}"
        checked = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for job in scrape["scrape_configs"]:
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                host = target.rsplit(":", 1)[0]
                assert host in resolved["services"], (
                    f"job {job['job_name']} scrapes {target}: no such service"
                )


def test_grafana_provisions_the_dashboard(resolved: dict) -> None:
    grafana = resolved["services"]["grafana"]
    provisioning = _host_path(grafana, PurePosixPath("/etc/grafana/provisioning"))
    assert provisioning is not None and provisioning.is_dir(), "no provisioning folder mounted into grafana"
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.y*ml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    prometheus = [s for s in sources if s["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0].get("isDefault"), sources
    assert urlsplit(prometheus[0]["url"]).hostname in resolved["services"], prometheus[0]["url"]
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    dashboards = []
    for provider in providers:
        folder = PurePosixPath(provider["options"]["path"])
        source = _host_path(grafana, folder)
        if source is not None and source.is_dir():
            dashboards += sorted(source.glob("*.json"))
        dashboards += [source for target, source in _mounts(grafana).items() if target.parent == folder]
    assert dashboards, (
        f"the dashboard providers' folders {[p['options']['path'] for p in providers]} are empty"
    )
    for source in dashboards:
        assert source.is_file(), f"a dashboard is mounted from {source}, which does not exist"
        dashboard = json.loads(source.read_text())
        assert dashboard.get("uid") and dashboard.get("panels"), f"{source} is not a Grafana dashboard"
        variables = dashboard.get("templating", {}).get("list", [])
        kinds = {v["query"] for v in variables if v.get("type") == "datasource"}
        assert kinds <= {s["type"] for s in sources}, f"{source} wants data sources {kinds}"
