"""Every overlay renders and validates (Kubernetes schemas, the KEDA and VPA schemas, the house
rules, checkov); each kind of mistake those checks exist for is caught."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

Docs = list[dict[str, Any]]


def find(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("overlay", ["sandbox", "production"])
def test_the_overlay_validates(check: ModuleType, rendered: dict[str, Docs], overlay: str) -> None:
    docs = rendered[overlay]
    assert check.check_overlay(overlay, docs) == []
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds
    workers = [d for d in docs if d["metadata"]["name"].startswith("bnpl-worker-")]
    assert len({d["metadata"]["name"] for d in workers if d["kind"] == "Deployment"}) == 3
    api = find(docs, "Deployment", "bnpl-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    secret = [r["secretRef"]["name"] for r in api["envFrom"] if "secretRef" in r]
    assert secret and secret[0].startswith("bnpl-secrets")
    assert all(d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace")


def test_only_the_sandbox_carries_secrets(rendered: dict[str, Docs]) -> None:
    assert not [d for d in rendered["production"] if d["kind"] == "Secret"]
    (secret,) = [d for d in rendered["sandbox"] if d["kind"] == "Secret"]
    assert secret["metadata"]["name"].startswith("bnpl-secrets-")  # generated, hashed name
    config = find(rendered["production"], "Deployment", "bnpl-api")
    refs = config["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert any(r.get("configMapRef", {}).get("name", "").startswith("bnpl-config-") for r in refs)


def test_core_kinds_are_validated_strictly(check: ModuleType, rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["production"])
    api = find(docs, "Deployment", "bnpl-api")
    api["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    find(docs, "Service", "bnpl-api")["spec"]["ports"][0]["port"] = "eighty"
    problems = check.check_schemas(docs)
    assert any("Deployment/bnpl-api" in p and "readinesProbe" in p for p in problems), problems
    assert any("Service/bnpl-api" in p and "eighty" in p for p in problems), problems


def test_keda_and_vpa_objects_are_validated(check: ModuleType, rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["production"])
    scaled = find(docs, "ScaledObject", "bnpl-worker-money")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    trigger["lagTreshold"] = trigger.pop("lagThreshold")
    scaled["spec"]["maxReplicas"] = 3
    vpa = find(docs, "VerticalPodAutoscaler", "bnpl-api")
    vpa["spec"]["updatePolicy"]["updateMode"] = "Sometimes"
    problems = check.check_schemas(docs)
    assert any("ScaledObject/bnpl-worker-money" in p and "lagTreshold" in p for p in problems)
    assert any("ScaledObject/bnpl-worker-money" in p and "maxReplicas" in p for p in problems)
    assert any("VerticalPodAutoscaler/bnpl-api" in p and "Sometimes" in p for p in problems)
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    assert check.check_schemas([unknown]) == ["Gadget/g: no schema for example.com/v1 Gadget"]


def test_the_house_rules(check: ModuleType, rendered: dict[str, Docs]) -> None:
    docs = copy.deepcopy(rendered["production"])
    money = find(docs, "Deployment", "bnpl-worker-money")
    args = money["spec"]["template"]["spec"]["containers"][0]["args"]
    args[2] += ",ledger.new_consumer"  # run a consumer KEDA does not watch
    api = find(docs, "Deployment", "bnpl-api")["spec"]["template"]["spec"]
    del api["containers"][0]["resources"]["limits"]["memory"]
    api["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    docs.remove(find(docs, "PodDisruptionBudget", "bnpl-edge"))
    docs.remove(find(docs, "HorizontalPodAutoscaler", "bnpl-api"))
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leaked"}})
    problems = set(check.check_rules(docs)) | set(check.check_production_secrets(docs))
    assert "Deployment/bnpl-worker-money: runs" in " ".join(problems)
    assert {
        "Deployment/bnpl-api/api: no memory limit",
        "Deployment/bnpl-api/api: root filesystem not read-only",
        "Deployment/bnpl-edge: no PodDisruptionBudget",
        "Deployment/bnpl-api: needs exactly one of an HPA or a ScaledObject",
        "Secret/leaked: secrets in the production overlay",
    } <= problems, problems


def test_a_kustomization_that_does_not_build_fails(check: ModuleType, tmp_path: Path) -> None:
    k8s = tmp_path / "deploy" / "k8s"
    shutil.copytree(check.K8S, k8s)
    shutil.copytree(check.DEPLOY / "nginx", tmp_path / "deploy" / "nginx")
    overlay = k8s / "overlays" / "production" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("../../base", "../../bases"))
    with pytest.raises(RuntimeError, match="kustomize build"):
        check.render(overlay.parent)


def test_checkov_passes_the_overlays_and_catches_a_privileged_pod(
    check: ModuleType, rendered: dict[str, Docs], tmp_path: Path
) -> None:
    broken = copy.deepcopy(rendered["sandbox"])
    api = find(broken, "Deployment", "bnpl-api")["spec"]["template"]["spec"]
    api["containers"][0]["securityContext"]["privileged"] = True
    api["hostNetwork"] = True
    problems = check.check_checkov({**rendered, "broken": broken}, tmp_path)  # one run
    assert problems, "checkov found nothing wrong with a privileged pod"
    assert all(p.endswith(", broken)") for p in problems), problems  # the real ones pass
    ids = " ".join(problems)
    assert "CKV_K8S_16" in ids  # privileged
    assert "CKV_K8S_19" in ids  # host network
