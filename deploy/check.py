"""`make deploy-check`: everything under deploy/ checked without a cluster or a container
engine.

- the image: hadolint on the Dockerfile; .dockerignore keeps the context to what it copies;
- compose: every role's command is a real `bnpl` command, every dependency and mounted
  file exists;
- Kubernetes: every overlay rendered with the pinned kustomize, core kinds validated
  against the Kubernetes schemas (kubernetes-validate, strict), KEDA and VPA objects against
  the schemas in deploy/k8s/schemas, the house rules below, and checkov's security policies;
- Prometheus: the alert rules' structure, every expression parsed as PromQL, and every
  metric they name exported by the platform; the Grafana dashboard likewise.

Each check returns a list of problems (empty: it passed); tests/deploy runs them one by
one, on the committed files and on broken copies of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("sandbox", "production")
KUBERNETES_VERSION = "1.33.0"
TOOLS = ROOT / ".tools" / "bin"
CHECKOV_VERSION = re.search(  # one pin, in the installer
    r"CHECKOV_VERSION=(\S+)", (ROOT / "scripts" / "deploy-tools.sh").read_text()
)[1]  # type: ignore[index]
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_ScaledObject.json",
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"): (
        "autoscaling.k8s.io_v1_VerticalPodAutoscaler.json"
    ),
}
ROLES = {"serve", "worker", "migrate", "sandbox"}

Doc = dict[str, Any]


def ensure_tools() -> None:
    """kustomize and checkov at their pinned versions (scripts/deploy-tools.sh)."""
    subprocess.run([str(ROOT / "scripts" / "deploy-tools.sh")], check=True)


def _uv() -> str:
    return shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")


# --- the image ---------------------------------------------------------------------------


def check_dockerfile(path: Path = ROOT / "Dockerfile") -> list[str]:
    """hadolint (warnings and errors fail), plus what hadolint does not know of this house:
    uv.lock installed frozen, a non-root user, no build tools in the last stage."""
    problems = []
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    run = subprocess.run(
        [hadolint, "--failure-threshold", "warning", "--no-color", str(path)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        problems += [f"hadolint: {line}" for line in (run.stdout + run.stderr).splitlines()]
    text = path.read_text()
    stages = re.split(r"(?im)^FROM\s", text)
    final = stages[-1]
    if len(stages) < 3:
        problems.append("Dockerfile: not multi-stage")
    if "uv sync --frozen" not in text:
        problems.append("Dockerfile: dependencies not installed with `uv sync --frozen`")
    user = re.findall(r"(?im)^USER\s+(\S+)", final)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("Dockerfile: the final stage does not run as a non-root user")
    for tool in ("gcc", "build-essential", "make ", "/uv ", "pip install"):
        if tool in final:
            problems.append(f"Dockerfile: build tool {tool.strip()!r} in the final stage")
    return problems


def check_dockerignore(path: Path = ROOT / ".dockerignore") -> list[str]:
    """The context is an allow-list, and holds what the Dockerfile copies."""
    lines = [x.strip() for x in path.read_text().splitlines() if x.strip() and x[0] != "#"]
    problems = [] if lines[:1] == ["*"] else [".dockerignore: does not start by ignoring *"]
    allowed = {x[1:].rstrip("/") for x in lines if x.startswith("!")}
    copied = re.findall(r"(?m)^COPY\s+(?!--from)(.+)\s+\S+$", (ROOT / "Dockerfile").read_text())
    for sources in copied:
        for source in sources.split():
            if not source.startswith("--") and source.rstrip("/") not in allowed:
                problems.append(f".dockerignore: the Dockerfile copies {source}, ignored")
    if ".venv" in allowed or ".git" in allowed:
        problems.append(".dockerignore: lets .venv or .git into the context")
    return problems


def check_compose(path: Path = DEPLOY / "compose.yaml") -> list[str]:
    problems = []
    compose = yaml.safe_load(path.read_text())
    services: dict[str, Any] = compose["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}) or {}:
            if dep not in services:
                problems.append(f"compose: {name} depends on unknown service {dep}")
        if service.get("image") == "bnpl:dev":
            command = service.get("command") or []
            if not command or command[0] not in ROLES:
                problems.append(f"compose: {name} runs {command!r}, not a role of `bnpl`")
            if not service.get("read_only"):
                problems.append(f"compose: {name} has a writable root filesystem")
            env = service.get("environment", {})
            if name != "migrate" and "BNPL_DATABASE_URL" not in env:
                problems.append(f"compose: {name} has no BNPL_DATABASE_URL")
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            missing = source.startswith(".") and not (path.parent / source).exists()
            if missing and not source.endswith("/tls"):  # tls/: made by deploy/tls.sh
                problems.append(f"compose: {name} mounts missing {source}")
    wanted = {"postgres", "redis", "kafka", "migrate", "api", "nginx"}
    problems += [f"compose: no {s} service" for s in sorted(wanted - set(services))]
    if not any(s.get("command", [None])[0] == "worker" for s in services.values()):
        problems.append("compose: no worker")
    return problems


# --- Kubernetes ----------------------------------------------------------------------------


def render(overlay: Path) -> list[Doc]:
    """`kustomize build` of an overlay (or any kustomization folder)."""
    run = subprocess.run(
        [
            str(TOOLS / "kustomize"),
            "build",
            "--load-restrictor",
            "LoadRestrictionsNone",
            str(overlay),
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"kustomize build {overlay}: {run.stderr.strip()}")
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def _name(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def check_schemas(docs: Iterable[Doc], version: str = KUBERNETES_VERSION) -> list[str]:
    """Core kinds against Kubernetes' own schemas (unknown fields refused); KEDA and VPA
    against deploy/k8s/schemas; any other kind is a problem (no schema, no trust)."""
    problems = []
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in CRD_SCHEMAS:
            schema = json.loads((K8S / "schemas" / CRD_SCHEMAS[key]).read_text())  # type: ignore[index]
            validator = jsonschema.Draft202012Validator(schema)
            for error in validator.iter_errors(doc):
                where = "/".join(map(str, error.absolute_path))
                problems.append(f"{_name(doc)}: {where}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = "/".join(map(str, e.path))
            problems.append(f"{_name(doc)}: {where}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{_name(doc)}: no schema for {key[0]} {key[1]}")
    return problems


def _pod_templates(docs: Iterable[Doc]) -> Iterable[tuple[Doc, Doc]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def check_rules(docs: Sequence[Doc]) -> list[str]:
    """The house rules every overlay keeps (see deploy/k8s/base):

    - every container: requests and limits, a read-only root filesystem, non-root, no
      privilege escalation, all capabilities dropped; the platform's image by a tag;
    - every Deployment: probes for whatever serves HTTP (/healthz, /readyz for the API),
      a PodDisruptionBudget, topology spread, and an autoscaler (HPA or KEDA, not both);
    - every worker Deployment's consumers are the consumer groups its ScaledObject watches;
    - every autoscaler, PDB and Service points at something that exists;
    - no Secret holds production credentials: the production overlay has no Secret at all;
    - the migrate Job exists and runs `migrate`.
    """
    problems = []
    by_kind: dict[str, list[Doc]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for owner, template in _pod_templates(docs):
        spec = template["spec"]
        pod_security = spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot"):
            problems.append(f"{_name(owner)}: pods may run as root")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{_name(owner)}: mounts a service account token")
        for c in spec["containers"]:
            where = f"{_name(owner)}/{c['name']}"
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.append(f"{where}: no {r} {part[:-1]}")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not all dropped")
            image = c["image"]
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                problems.append(f"{where}: image {image} has no fixed tag")
            for env in c.get("env", []):
                if "value" in env and re.search(r"SECRET|TOKEN|PASSWORD|KEY", env["name"]):
                    problems.append(f"{where}: {env['name']} set in plain text")
            serves_http = any(p.get("name") in ("http", "https") for p in c.get("ports", []))
            if serves_http and owner["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in c:
                        problems.append(f"{where}: serves HTTP without a {probe}")
            if c.get("args", [None])[0] == "serve":
                paths = {
                    c.get(p, {}).get("httpGet", {}).get("path")
                    for p in ("livenessProbe", "readinessProbe")
                }
                if paths != {"/healthz", "/readyz"}:
                    problems.append(f"{where}: the API's probes are not /healthz and /readyz")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind.get("ScaledObject", [])}
    vpas = {v["spec"]["targetRef"]["name"] for v in by_kind.get("VerticalPodAutoscaler", [])}
    for name in sorted((hpas | set(scaled) | vpas) - set(deployments)):
        problems.append(f"an autoscaler targets Deployment/{name}, which does not exist")
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if not any(_matches(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs):
            problems.append(f"Deployment/{name}: no PodDisruptionBudget")
        if not d["spec"]["template"]["spec"].get("topologySpreadConstraints"):
            problems.append(f"Deployment/{name}: no topology spread")
        component = labels.get("app.kubernetes.io/component")
        if component == "providers":
            continue  # the sandbox's simulators: one replica, no autoscaling
        if (name in hpas) == (name in scaled):
            problems.append(f"Deployment/{name}: needs exactly one of an HPA or a ScaledObject")
        if name not in vpas:
            problems.append(f"Deployment/{name}: no VerticalPodAutoscaler (recommendations)")
        if component == "worker":
            args = d["spec"]["template"]["spec"]["containers"][0]["args"]
            consumers = set(args[args.index("--consumers") + 1].split(","))
            groups = {t["metadata"]["consumerGroup"] for t in scaled[name]["spec"]["triggers"]}
            if consumers != groups:
                problems.append(
                    f"Deployment/{name}: runs {sorted(consumers)} but scales on the lag of "
                    f"{sorted(groups)}"
                )
    workers = [d for d in deployments.values() if "worker" in d["metadata"]["name"]]
    if len(workers) < 2:
        problems.append("workers are not split by consumer group")
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        if not any(
            _matches(selector, d["spec"]["template"]["metadata"]["labels"])
            for d in deployments.values()
        ):
            problems.append(f"{_name(pdb)}: selects no pods")
    for service in by_kind.get("Service", []):
        selector = service["spec"].get("selector", {})
        if not any(
            _matches(selector, d["spec"]["template"]["metadata"]["labels"])
            for d in deployments.values()
        ):
            problems.append(f"{_name(service)}: selects no pods")
    jobs = [j for j in by_kind.get("Job", []) if j["metadata"]["name"].endswith("migrate")]
    if not jobs or jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"] != ["migrate"]:
        problems.append("no migrate Job running `bnpl migrate`")
    if not by_kind.get("NetworkPolicy"):
        problems.append("no NetworkPolicy")
    return problems


def check_production_secrets(docs: Iterable[Doc]) -> list[str]:
    return [f"{_name(d)}: secrets in the production overlay" for d in docs if d["kind"] == "Secret"]


def check_checkov(rendered: dict[str, Sequence[Doc]], folder: Path) -> list[str]:
    """checkov's Kubernetes policies on the rendered overlays (one run: it takes seconds to
    start); skips are annotations on the objects, each with its reason, plus the few listed
    here for the whole platform."""
    skips = {
        # The overlays pin a release tag; a digest is set by the release pipeline.
        "CKV_K8S_43",
        # Settings are read from the environment (pydantic-settings); the values come from
        # the Secret, never the image, and no process writes its environment anywhere.
        "CKV_K8S_35",
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for overlay, docs in rendered.items():
        path = folder / f"{overlay}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        files += ["--file", str(path)]
    run = subprocess.run(
        [
            _uv(),
            "tool",
            "run",
            "--quiet",
            "--from",
            f"checkov=={CHECKOV_VERSION}",
            "checkov",
            "--quiet",
            "--compact",
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-check",
            ",".join(sorted(skips)),
            *files,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if run.returncode not in (0, 1):
        return [f"checkov failed to run ({run.returncode}): {run.stderr[-2000:]}"]
    if not run.stdout.strip():
        return [f"checkov: no output: {run.stderr[-2000:]}"]
    report = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    problems = []
    passed = 0
    for r in reports:
        if "results" not in r:
            continue
        passed += r["summary"]["passed"]
        for failed in r["results"]["failed_checks"]:
            problems.append(
                f"checkov: {failed['check_id']} {failed['check_name']} ({failed['resource']}, "
                f"{Path(failed['file_path']).stem})"
            )
    if passed == 0:
        problems.append("checkov: no check passed (nothing was checked?)")
    return problems


def check_overlay(overlay: str, docs: Sequence[Doc]) -> list[str]:
    problems = check_schemas(docs) + check_rules(docs)
    if overlay == "production":
        problems += check_production_secrets(docs)
    return problems


# --- metrics, alerts, dashboard ----------------------------------------------------------


def exported_metrics() -> set[str]:
    """The Prometheus series the platform exports: the metrics registered when the app is
    built, with their histogram and counter suffixes."""
    from prometheus_client import REGISTRY

    from bnpl.app import create_app
    from bnpl.config import Settings

    create_app(Settings())  # imports every context, so every module's metrics register

    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        if metric.type == "counter":
            names |= {f"{metric.name}_total", f"{metric.name}_created"}
        if metric.type == "histogram":
            names |= {f"{metric.name}_{s}" for s in ("bucket", "count", "sum", "created")}
    return names


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (parsed, not guessed)."""
    import promql_parser

    found: set[str] = set()

    def walk(node: Any) -> None:
        if node is None:
            return
        kind = type(node).__name__
        if kind == "VectorSelector" and node.name:
            found.add(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return found


def check_alerts(path: Path = DEPLOY / "prometheus" / "alerts.yaml") -> list[str]:
    import promql_parser

    problems = []
    metrics = exported_metrics()
    rules = yaml.safe_load(path.read_text())
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert", "?")
            seen.add(name)
            for field in ("alert", "expr", "labels", "annotations"):
                if field not in rule:
                    problems.append(f"alert {name}: no {field}")
            if rule.get("labels", {}).get("severity") not in ("page", "ticket"):
                problems.append(f"alert {name}: severity is not page or ticket")
            annotations = rule.get("annotations", {})
            if "runbook_url" not in annotations or "summary" not in annotations:
                problems.append(f"alert {name}: no summary or runbook_url")
            elif not _runbook_exists(annotations["runbook_url"]):
                problems.append(f"alert {name}: {annotations['runbook_url']} is not in the docs")
            try:
                promql_parser.parse(rule["expr"])
            except Exception as e:
                problems.append(f"alert {name}: PromQL does not parse: {e}")
                continue
            for metric in _metric_names(rule["expr"]) - metrics:
                problems.append(f"alert {name}: {metric} is not exported by the platform")
            if not re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))):
                problems.append(f"alert {name}: bad `for`")
    return problems


def _runbook_exists(url: str) -> bool:
    """docs/operations.md#anchor: the anchor is a heading of docs/operations.md."""
    page, _, anchor = url.partition("#")
    if not page.endswith("docs/operations.md"):
        return False
    headings = re.findall(r"(?m)^#+\s+(.+)$", (ROOT / "docs" / "operations.md").read_text())
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in headings}
    return anchor in slugs


def check_dashboard(path: Path = DEPLOY / "grafana" / "bnpl.json") -> list[str]:
    import promql_parser

    problems = []
    metrics = exported_metrics()
    board = json.loads(path.read_text())
    for field in ("title", "uid", "panels", "schemaVersion"):
        if field not in board:
            problems.append(f"dashboard: no {field}")
    titles = set()
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            continue
        titles.add(panel.get("title"))
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"dashboard panel {panel.get('title')!r}: no query")
        for target in targets:
            expr = target.get("expr", "")
            try:
                promql_parser.parse(expr.replace("$__rate_interval", "5m"))
            except Exception as e:
                problems.append(f"dashboard panel {panel.get('title')!r}: bad PromQL: {e}")
                continue
            for metric in _metric_names(expr.replace("$__rate_interval", "5m")) - metrics:
                problems.append(f"dashboard panel {panel.get('title')!r}: {metric} not exported")
    for wanted in ("Requests per second", "Errors (5xx) per second", "Latency p99 by route"):
        if wanted not in titles:
            problems.append(f"dashboard: no panel {wanted!r}")
    return problems


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    checkov = "--no-checkov" not in argv
    ensure_tools()
    rendered = {o: render(K8S / "overlays" / o) for o in OVERLAYS}
    results = {
        "Dockerfile (hadolint)": check_dockerfile(),
        ".dockerignore": check_dockerignore(),
        "compose": check_compose(),
        **{f"k8s overlay {o}": check_overlay(o, docs) for o, docs in rendered.items()},
        "k8s security policies (checkov)": (
            check_checkov(rendered, ROOT / ".tools" / "rendered") if checkov else []
        ),
        "alert rules": check_alerts(),
        "dashboard": check_dashboard(),
    }
    for what, problems in results.items():
        print(f"{'ok  ' if not problems else 'FAIL'}  {what}")
        for p in problems:
            print(f"      {p}")
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
