"""The deployment files: the Dockerfile passes hadolint, the Compose files follow the Compose
specification, the Kubernetes overlays render (kustomize) into objects the Kubernetes API
schema accepts, and every environment gives the service settings it starts with."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyOptions

from app.settings import Environment, Settings
from tests.support import ROOT, setting_variables

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
KUSTOMIZE = DEPLOY / "k8s"
ENVIRONMENTS = ("local", "dev", "prod")
OVERLAYS = ("dev", "prod")
IMAGE = "fastapi-starter"
# Read by Uvicorn itself, not by Settings.
SERVER_VARIABLES = {"FORWARDED_ALLOW_IPS"}
# What an operator provides for the `${NAME:?...}` variables of the Compose files, and the
# Secret that the production overlay expects to exist.
OPERATOR_VALUES = {
    "POSTGRES_PASSWORD": "a-password",
    "SECRET_KEY": "an-operator-secret-key-of-40-characters-x",
    "METRICS_TOKEN": "a-metrics-token",
    "TRUSTED_HOSTS": "app.example.com",
}
PRODUCTION_SECRET = {
    "SECRET_KEY": OPERATOR_VALUES["SECRET_KEY"],
    "METRICS_TOKEN": OPERATOR_VALUES["METRICS_TOKEN"],
    "DATABASE_URL": "postgresql://app:a-password@db.internal:5432/app",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def _settings_from(variables: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process started with exactly `variables` would build."""
    for name in setting_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


# Docker.


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"

    done = subprocess.run(  # noqa: S603 - the linter installed with the dev dependencies
        [hadolint, "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (done.returncode, done.stdout) == (0, "")


def test_the_image_installs_the_uv_the_makefile_pins() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    dockerfile = re.search(r"uv==(\S+)", (ROOT / "Dockerfile").read_text())

    assert makefile is not None
    assert dockerfile is not None
    assert dockerfile.group(1) == makefile.group(1)


def test_the_build_context_holds_everything_the_image_copies() -> None:
    # .dockerignore leaves everything out, then lets named paths back in.
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore
    let_in = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)

    sources = [source.rstrip("/") for line in copied for source in line.split()]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(source == path or source.startswith(f"{path}/") for path in let_in), source


# Compose.


def _interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` (the forms used here)."""

    def value(match: re.Match[str]) -> str:
        name, operator, default = match.group("name", "operator", "default")
        if name in values:
            return values[name]
        assert operator == ":-", f"{name} is required: {default}"
        return default

    pattern = r"\$\{(?P<name>\w+)(?:(?P<operator>:-|:\?)(?P<default>[^}]*))?\}"
    return re.sub(pattern, value, text)


def _compose_file(name: str, values: Mapping[str, str] = OPERATOR_VALUES) -> dict[str, Any]:
    text = _interpolate((COMPOSE / name).read_text(), values)
    PyOptions(apply_merge=True).from_yaml(text).validate()  # raises on anything off-spec
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _environment_of(service: str, *files: dict[str, Any]) -> dict[str, str]:
    """The service's environment once Compose has merged the files in order."""
    environment: dict[str, str] = {}
    for file in files:
        environment |= file["services"].get(service, {}).get("environment", {})
    return environment


@pytest.mark.parametrize(
    "name", ["compose.yaml", *(f"compose.{environment}.yaml" for environment in ENVIRONMENTS)]
)
def test_each_compose_file_follows_the_compose_specification(name: str) -> None:
    assert _compose_file(name)["services"]


def _compose_environment(environment: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base file and the environment's, each interpolated on its own as Compose does;
    on a developer's machine with no variable set."""
    values = {} if environment == "local" else OPERATOR_VALUES
    return _compose_file("compose.yaml", values), _compose_file(
        f"compose.{environment}.yaml", values
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_compose_environment_starts_the_service(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, override = _compose_environment(environment)
    services = {
        name: service for name, service in base["services"].items() if IMAGE in service["image"]
    }
    assert set(services) == {"migrate", "api", "worker"}

    for name in services:
        variables = _environment_of(name, base, override)
        assert set(variables) <= setting_variables() | SERVER_VARIABLES, name
        settings = _settings_from(variables, monkeypatch)
        assert settings.database.url.startswith("postgresql"), name
        assert settings.redis.url == "redis://redis:6379/0", name
    expected = Environment.LOCAL if environment == "local" else Environment.PRODUCTION
    assert settings.environment is expected
    if environment == "prod":  # /metrics is reachable through the proxy
        assert settings.metrics.token is not None


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_compose_publishes_ports_on_the_loopback_only(environment: str) -> None:
    # The API trusts X-Forwarded-* outside local: only the proxy on the host may connect.
    for file in _compose_environment(environment):
        for name, service in file["services"].items():
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), (environment, name, port)


# Kubernetes.


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found is not None, "kubectl is not installed: `make kubectl`"
    return found


def _render(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(  # noqa: S603 - kubectl from the PATH, with fixed arguments
        [kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"KUBECONFIG": os.devnull},  # no cluster is asked
    )
    return list(yaml.safe_load_all(done.stdout))


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, kubectl: str) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render(kubectl, request.param)


def _pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in objects:
        if item["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield item["metadata"]["name"], item["spec"]["template"]["spec"]


def _ours(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) of each container running the service's image."""
    for name, pod in _pod_specs(objects):
        for container in pod["containers"]:
            if IMAGE in container["image"]:
                yield name, pod, container


def test_each_overlay_renders_objects_kubernetes_accepts(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    version = kubernetes_validate.latest_version()

    for item in objects:
        kubernetes_validate.validate(item, version, strict=True)  # raises on unknown fields


def test_the_service_runs_locked_down(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    workloads = {name for name, _, _ in _ours(objects)}
    assert workloads == {"fastapi-starter-api", "fastapi-starter-worker", "fastapi-starter-migrate"}

    for name, pod, container in _ours(objects):
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert container["resources"]["requests"], name
        assert container["resources"]["limits"]["memory"], name


def test_references_between_objects_hold(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = overlay
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for item in objects:
        by_kind.setdefault(item["kind"], {})[item["metadata"]["name"]] = item
    api = by_kind["Deployment"]["fastapi-starter-api"]
    api_labels: dict[str, str] = api["spec"]["template"]["metadata"]["labels"]

    def selects_api(selector: Mapping[str, str]) -> bool:
        return selector.items() <= api_labels.items()

    assert selects_api(by_kind["Service"]["fastapi-starter-api"]["spec"]["selector"])
    assert selects_api(
        by_kind["PodDisruptionBudget"]["fastapi-starter-api"]["spec"]["selector"]["matchLabels"]
    )
    assert selects_api(
        by_kind["NetworkPolicy"]["fastapi-starter-api"]["spec"]["podSelector"]["matchLabels"]
    )
    target = by_kind["HorizontalPodAutoscaler"]["fastapi-starter-api"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "fastapi-starter-api")
    assert "replicas" not in api["spec"]  # the autoscaler's to set
    for ingress in by_kind.get("Ingress", {}).values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] in by_kind["Service"], name
    for _, _, container in _ours(objects):
        for source in container["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in by_kind["ConfigMap"]
            elif name == "prod":  # created by the operator beforehand, under this name
                assert source["secretRef"]["name"] == "fastapi-starter"
            else:
                assert source["secretRef"]["name"] in by_kind["Secret"]


def test_each_overlay_starts_the_service(
    overlay: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, objects = overlay
    data = {
        (item["kind"], item["metadata"]["name"]): item.get("data", {})
        for item in objects
        if item["kind"] in {"ConfigMap", "Secret"}
    }

    for workload, _, container in _ours(objects):
        variables = {item["name"]: item["value"] for item in container.get("env", [])}
        for source in container["envFrom"]:
            if "configMapRef" in source:
                variables |= data[("ConfigMap", source["configMapRef"]["name"])]
            elif name == "prod":
                variables |= PRODUCTION_SECRET
            else:
                secret = data[("Secret", source["secretRef"]["name"])]
                variables |= {
                    key: base64.b64decode(value).decode() for key, value in secret.items()
                }
        assert set(variables) <= setting_variables() | SERVER_VARIABLES, workload
        settings = _settings_from(variables, monkeypatch)
        assert settings.redis.url, workload
        assert not settings.database.is_sqlite, workload
    assert settings.environment is (Environment.PRODUCTION if name == "prod" else Environment.LOCAL)
