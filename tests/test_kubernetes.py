"""The Kubernetes manifests (deploy/kustomization.yaml, deploy/kubernetes/): every object valid against the
Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields are errors too), and what issue 18
asks of them - the NATS cluster (three nodes, one per machine, R3, fsync always, a quorum kept), every
service and the gateway with two replicas, probes, resource requests, a PodDisruptionBudget,
anti-affinity, the drain bound, and only its own secrets."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from runtime import bus_auth, compose_secrets
from runtime.inbox import DRAIN_SECONDS
from runtime.topology import SERVICES

pytestmark = pytest.mark.unit
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = "1.33.0"
APPS = (*SERVICES, "gateway")


@functools.cache
def _documents() -> tuple[dict[str, Any], ...]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / resource).read_text()) if d]
    return tuple(docs)


def documents() -> list[dict[str, Any]]:
    """Every object the kustomization applies (copies: a test may change them)."""
    return copy.deepcopy(list(_documents()))


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_object_is_valid_against_the_kubernetes_schemas(doc: dict[str, Any]):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_what_kubernetes_would():
    broken = find("Deployment", "pipeline")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    unknown = find("Deployment", "gateway")
    unknown["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSION, strict=True)


def test_kustomization_files_exist():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (DEPLOY / entry.split("=")[-1]).is_file(), entry


def _selects(pdb: dict[str, Any], labels: dict[str, str]) -> bool:
    return pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("app", APPS)
def test_each_app_runs_two_replicas_spread_probed_budgeted_and_drained(app: str):
    deployment = find("Deployment", app)
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe in container, probe
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    # SIGTERM drains within 30 s (runtime.service.main; DRAIN_SECONDS for the consumers): a longer grace.
    assert pod["terminationGracePeriodSeconds"] > max(30, DRAIN_SECONDS)
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    pdb = find("PodDisruptionBudget", app)
    assert _selects(pdb, labels) and pdb["spec"]["minAvailable"] == 1
    assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("app", APPS)
def test_each_app_mounts_only_its_own_secrets_and_logs_in_to_every_nats_node_as_itself(app: str):
    pod = find("Deployment", app)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    mounted = {i["key"] for i in volume["secret"]["items"]}
    assert mounted == {"secret_key", f"db_password_{app}", f"nats_password_{app}"}
    assert mounted <= set(compose_secrets.names())
    files = {v.rsplit("/", 1)[1] for k, v in env.items() if k.endswith("_FILE")}
    assert files == mounted
    urls = env["NATS_URL"].split(",")
    assert len(urls) == 3 and all(u.startswith(f"nats://{app}@nats-") for u in urls)
    assert env["BUS_STREAM_REPLICAS"] == "3"
    assert env["DATABASE_URL"].startswith(f"postgresql://{app}@")
    assert not any(k.startswith(("DATABASE_ADMIN", "POSTGRES")) for k in env)


def test_services_are_probed_over_the_bus_and_live_while_degraded():
    for service in SERVICES:
        [container] = find("Deployment", service)["spec"]["template"]["spec"]["containers"]
        ready = container["readinessProbe"]["exec"]["command"]
        assert ready == ["python", "-m", "runtime.health", service, "--local"]
        assert container["livenessProbe"]["exec"]["command"] == [*ready, "--alive"]
    [gateway] = find("Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_nats_is_three_nodes_one_per_machine_with_a_quorum_kept_and_fsync_always():
    sts = find("StatefulSet", "nats")
    pod = sts["spec"]["template"]["spec"]
    assert sts["spec"]["replicas"] == 3
    required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    assert find("PodDisruptionBudget", "nats")["spec"]["minAvailable"] == 2
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = (DEPLOY / "kubernetes" / "nats-cluster.conf").read_text()
    assert "sync_interval: always" in conf and 'include "nats-users.conf"' in conf
    assert "no_advertise: true" in conf and "$NATS_ROUTE_PASSWORD" in conf
    [container] = pod["containers"]
    defined = {e["name"] for e in container["env"]}
    # Every variable the configuration and the users file refer to is set in the pod.
    referenced = set(re.findall(r"(?<!\")\$([A-Z][A-Z_0-9]*)", conf + (DEPLOY / "nats-users.conf").read_text()))
    assert referenced <= defined, referenced - defined
    assert {bus_auth.password_variable(name) for name in bus_auth.COMPONENTS} <= defined
    routes = [e["value"] for e in container["env"] if e["name"].startswith("NATS_ROUTE_") and "value" in e]
    assert sorted(r.rsplit("@", 1)[1] for r in routes) == [f"nats-{i}.nats-headless:6222" for i in range(3)]


def test_only_the_migrate_job_holds_the_superuser_and_operator_logins():
    for doc in documents():
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        items = {i["key"] for v in pod.get("volumes", []) if "secret" in v for i in v["secret"]["items"]}
        if doc["kind"] == "Job":
            assert {"postgres_password", "nats_password_cli"} <= items
        else:
            assert not items & {"postgres_password", "nats_password_cli"}, doc["metadata"]["name"]


def _secret_keys(node: Any) -> set[str]:
    """Every key of the Secret `partnerops` an object reads (secretKeyRef or a secret volume's items)."""
    keys: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict) and ref.get("name") == "partnerops":
            keys.add(ref["key"])
        secret = node.get("secret")
        if isinstance(secret, dict) and secret.get("secretName") == "partnerops":
            keys |= {item["key"] for item in secret.get("items") or []}
        for value in node.values():
            keys |= _secret_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= _secret_keys(value)
    return keys


def test_every_secret_key_the_manifests_read_is_a_file_partnerops_secrets_writes():
    # The Secret is made with `kubectl create secret generic partnerops --from-file=secrets/` (docs/deploy.md):
    # a key nothing writes leaves a pod in CreateContainerConfigError.
    read = set().union(*(_secret_keys(d) for d in documents()))
    assert "nats_route_password" in read and "secret_key" in read
    assert sorted(read - set(compose_secrets.names())) == []
