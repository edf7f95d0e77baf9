"""The Helm chart (charts/caravan): lint, render with several values, assert on the objects.

Needs the helm binary that hack/build-binaries.sh builds (`make test` builds it first).
Without it these tests fail, never skip: an unchecked chart is a broken chart.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.helm import helm, helm_bin, versions

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "caravan"
CRD_FILE = CHART / "files" / "crds" / "jobs.caravan.dev.yaml"
NAMESPACE = "caravan-test"
RELEASE = "caravan"

Obj = dict[str, Any]


def _set_args(values: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in values.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def template_args(values: dict[str, Any]) -> list[str]:
    # A helm built from source assumes Kubernetes v1.20 unless told: give the pinned version.
    return [
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        versions()["k8s_version"],
        *_set_args(values),
    ]


def render(**values: Any) -> list[Obj]:
    """The chart's objects for these values (keys are dotted paths, values JSON-able)."""
    out = helm(*template_args(values)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_fails(**values: Any) -> str:
    result = helm(*template_args(values), check=False)
    assert result.returncode != 0, f"rendering with {values} should fail"
    return result.stderr


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(objs: list[Obj]) -> Obj:
    containers: list[Obj] = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(objs: list[Obj]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objs)["env"]}


@pytest.fixture(scope="module")
def default() -> list[Obj]:
    return render()


# --- lint -------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
@pytest.mark.parametrize(
    "values",
    [
        {},
        {"auth.mode": "none", "crds.install": False, "configMaps.create": False},
        {
            "replicaCount": 3,
            "ingress.enabled": True,
            "networkPolicy.enabled": True,
            "settings.schema": '{"type": "object"}',
        },
    ],
    ids=["defaults", "minimal", "everything"],
)
def test_lint_is_clean(strict: bool, values: dict[str, Any]) -> None:
    args = ["lint", str(CHART), "--kube-version", versions()["k8s_version"], *_set_args(values)]
    result = helm(*args, *(["--strict"] if strict else []))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"] == ">=1.30.0-0"


def test_rendering_is_deterministic() -> None:
    first = helm(*template_args({})).stdout
    assert helm(*template_args({})).stdout == first


# --- CRD --------------------------------------------------------------------------------


def test_crd_is_the_shared_file_and_kept_on_uninstall(default: list[Obj]) -> None:
    crd = one(default, "CustomResourceDefinition", "jobs.caravan.dev")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    source = yaml.safe_load(CRD_FILE.read_text())
    assert crd["spec"] == source["spec"], "the chart must render files/crds/ unchanged"
    for key, value in source["metadata"].get("labels", {}).items():
        assert crd["metadata"]["labels"][key] == value
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crd_toggle() -> None:
    assert not of_kind(render(**{"crds.install": False}), "CustomResourceDefinition")


# --- RBAC -------------------------------------------------------------------------------

EXPECTED_ROLE_RULES = {
    ("caravan.dev", "jobs"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("caravan.dev", "jobs/status"): {"get", "update", "patch"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("apps", "deployments/scale"): {"patch"},
    ("apps", "controllerrevisions"): {"get", "list", "create", "delete"},
    ("", "pods"): {"get", "list", "watch", "patch", "delete"},
    ("", "pods/log"): {"get"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch"},
    ("", "secrets"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"get", "list", "watch", "create", "patch"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}


def flat_rules(rules: list[Obj]) -> dict[tuple[str, str], set[str]]:
    flat: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "*" not in rule.get("apiGroups", [])
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.setdefault((group, resource), set()).update(rule["verbs"])
    return flat


def test_role_is_least_privilege_and_namespaced(default: list[Obj]) -> None:
    role = one(default, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert flat_rules(role["rules"]) == EXPECTED_ROLE_RULES
    binding = one(default, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = one(default, "ServiceAccount", RELEASE)
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": NAMESPACE,
        }
    ]


def test_nothing_is_granted_cluster_wide_but_reviews(default: list[Obj]) -> None:
    # No Secret (nor anything else) across namespaces. The operator follows what the
    # store watches in the namespace, so not even CRDs are read.
    roles = of_kind(default, "ClusterRole")
    assert [r["metadata"]["name"].endswith("-metrics-reader") for r in roles] == [True]
    assert roles[0]["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    refs = {b["roleRef"]["name"] for b in of_kind(default, "ClusterRoleBinding")}
    assert refs == {"system:auth-delegator"}


@pytest.mark.parametrize("mode", ["kubernetes", "none"])
def test_auth_delegator_only_with_kubernetes_auth(mode: str) -> None:
    objs = render(**{"auth.mode": mode})
    delegators = [
        b
        for b in of_kind(objs, "ClusterRoleBinding")
        if b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:auth-delegator",
        }
    ]
    assert len(delegators) == (1 if mode == "kubernetes" else 0)
    for binding in delegators:
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    assert env_of(objs)["CARAVAN_AUTH_MODE"] == mode


def test_cluster_scoped_names_include_the_namespace(default: list[Obj]) -> None:
    # Two releases of the same name in two namespaces must not fight over them.
    for obj in of_kind(default, "ClusterRole") + of_kind(default, "ClusterRoleBinding"):
        assert NAMESPACE in obj["metadata"]["name"]


def test_rbac_toggle() -> None:
    objs = render(**{"rbac.create": False})
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert not of_kind(objs, kind)


# --- task pods ---------------------------------------------------------------------------


def test_task_pods_run_as_an_account_with_no_rbac_and_no_token(default: list[Obj]) -> None:
    task = one(default, "ServiceAccount", f"{RELEASE}-task")
    assert task["automountServiceAccountToken"] is False
    bound = {
        s["name"]
        for b in of_kind(default, "RoleBinding") + of_kind(default, "ClusterRoleBinding")
        for s in b["subjects"]
    }
    assert f"{RELEASE}-task" not in bound
    env = env_of(default)
    assert env["CARAVAN_TASK_SERVICE_ACCOUNT"] == f"{RELEASE}-task"
    assert env["CARAVAN_ALLOWED_SERVICE_ACCOUNTS"] == ""
    assert env["CARAVAN_SERVICE_ACCOUNT"] == {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}
    assert env["CARAVAN_POD_POLICY"] == "baseline"
    objs = render(**{"taskPods.serviceAccount.create": False})
    assert [a["metadata"]["name"] for a in of_kind(objs, "ServiceAccount")] == [RELEASE]
    assert env_of(objs)["CARAVAN_TASK_SERVICE_ACCOUNT"] == ""


def test_metrics_readers_and_service_monitor(default: list[Obj]) -> None:
    reader = one(default, "ClusterRole", f"{RELEASE}-{NAMESPACE}-metrics-reader")
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert not [
        b
        for b in of_kind(default, "ClusterRoleBinding")
        if b["roleRef"]["name"] == reader["metadata"]["name"]
    ]
    assert not of_kind(default, "ServiceMonitor")
    prometheus = {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}
    objs = render(
        **{
            "metrics.readers": [prometheus],
            "metrics.serviceMonitor.enabled": True,
            "metrics.serviceMonitor.labels": {"release": "kube-prometheus"},
        }
    )
    binding = one(objs, "ClusterRoleBinding", f"{RELEASE}-{NAMESPACE}-metrics-reader")
    assert binding["subjects"] == [prometheus]
    monitor = one(objs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    service = one(objs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert not of_kind(render(**{"auth.mode": "none"}), "ClusterRole")[1:]


def test_token_audience_and_body_limit(default: list[Obj]) -> None:
    assert "CARAVAN_TOKEN_AUDIENCE" not in env_of(default)
    assert env_of(default)["CARAVAN_MAX_BODY_BYTES"] == "8388608"
    objs = render(**{"auth.tokenAudience": "caravan", "maxBodyBytes": 1048576})
    assert env_of(objs)["CARAVAN_TOKEN_AUDIENCE"] == "caravan"
    assert env_of(objs)["CARAVAN_MAX_BODY_BYTES"] == "1048576"


def variables(policy: Obj) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


def test_the_pod_policy_is_the_shared_file_bound_to_the_namespace(default: list[Obj]) -> None:
    policy = one(default, "ValidatingAdmissionPolicy")
    shared = yaml.safe_load((CHART / "files" / "policies" / "task-pods.yaml").read_text())
    assert policy["metadata"]["name"] == f"{RELEASE}-{NAMESPACE}-task-pods"
    assert policy["spec"]["validations"] == shared["spec"]["validations"]
    params = ("allowedServiceAccounts", "taskServiceAccount", "ownServiceAccount", "baseline")
    ours, theirs = variables(policy), variables(shared)
    assert {k: v for k, v in ours.items() if k not in params} == {
        k: v for k, v in theirs.items() if k not in params
    }
    assert [ours[k] for k in params] == ["['']", f"'{RELEASE}-task'", f"'{RELEASE}'", "true"]
    assert all(v["reason"] == "Invalid" for v in policy["spec"]["validations"])
    binding = one(default, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
        "matchResources": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
        },
    }


def test_pod_policy_values() -> None:
    objs = render(
        **{
            "taskPods.allowedServiceAccounts": ["builder", RELEASE],
            "taskPods.podPolicy": "privileged",
        }
    )
    params = variables(one(objs, "ValidatingAdmissionPolicy"))
    # Caravan's own account is dropped from the list (and refused by the policy anyway).
    assert params["allowedServiceAccounts"] == "['builder']"
    assert params["baseline"] == "false"
    assert env_of(objs)["CARAVAN_ALLOWED_SERVICE_ACCOUNTS"] == f"builder,{RELEASE}"
    assert env_of(objs)["CARAVAN_POD_POLICY"] == "privileged"
    objs = render(**{"taskPods.admissionPolicy": False})
    assert not of_kind(objs, "ValidatingAdmissionPolicy")
    assert not of_kind(objs, "ValidatingAdmissionPolicyBinding")


# --- Deployment -------------------------------------------------------------------------


def test_deployment_command_env_and_identity(default: list[Obj]) -> None:
    c = container(default)
    assert [*c["command"], *c["args"]] == ["caravan", "run", "--host", "0.0.0.0", "--port", "8080"]
    assert c["image"] == "caravan:0.1.0"
    env = env_of(default)
    assert env["CARAVAN_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["CARAVAN_AUTH_MODE"] == "kubernetes"
    assert env["CARAVAN_LOG_LEVEL"] == "INFO"
    assert env["CARAVAN_CONFIGMAP_PREFIX"] == "caravan"
    pod = one(default, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(default, "ServiceAccount", RELEASE)["metadata"]["name"]
    # No CARAVAN_PORT=tcp://... from the Service named like the release; ordinary network.
    assert pod["enableServiceLinks"] is False
    assert "hostNetwork" not in pod
    assert not {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} & set(env)


def test_values_for_a_node_whose_pods_have_no_network() -> None:
    # The local cluster's real node (docs/local-cluster.md): host network, loopback.
    objs = render(
        **{
            "hostNetwork": True,
            "listen.host": "127.0.0.1",
            "listen.port": 18080,
            "apiServer.host": "127.0.0.1",
            "apiServer.port": 6443,
        }
    )
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    c = container(objs)
    assert c["args"] == ["run", "--host", "127.0.0.1", "--port", "18080"]
    # No container port (it would be a host port: one pod per node), the probes by number,
    # and replicas on one node share the port.
    assert "ports" not in c
    # Readiness from the pod's own file: an HTTP probe would reach any replica.
    assert c["readinessProbe"]["exec"] == {"command": ["test", "-e", "/tmp/caravan-ready"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 18080}
    assert one(objs, "Service")["spec"]["ports"][0]["targetPort"] == 18080
    env = env_of(objs)
    assert env["CARAVAN_REUSE_PORT"] == "true"
    assert env["CARAVAN_READY_FILE"] == "/tmp/caravan-ready"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert "listen" in render_fails(**{"listen.port": 0})


def test_deployment_security_context(default: list[Obj]) -> None:
    pod = one(default, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(default)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container(default)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_deployment_probes_ports_resources(default: list[Obj]) -> None:
    c = container(default)
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert c["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }


def test_deployment_values() -> None:
    objs = render(
        **{
            "image.repository": "registry.example/caravan",
            "image.tag": "1.2.3",
            "logLevel": "DEBUG",
            "configMaps.prefix": "team-a",
            "replicaCount": 2,
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
        }
    )
    c = container(objs)
    assert c["image"] == "registry.example/caravan:1.2.3"
    env = env_of(objs)
    assert env["CARAVAN_LOG_LEVEL"] == "DEBUG"
    assert env["CARAVAN_CONFIGMAP_PREFIX"] == "team-a"
    assert env["EXTRA"] == "1"
    assert one(objs, "Deployment")["spec"]["replicas"] == 2


def test_selectors_match_pod_labels(default: list[Obj]) -> None:
    deployment = one(default, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    # The selector is immutable: only labels that never change over a release's life.
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    assert one(default, "Service")["spec"]["selector"] == selector


def test_namespaced_objects_are_in_the_release_namespace(default: list[Obj]) -> None:
    cluster_kinds = {
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for obj in default:
        if obj["kind"] in cluster_kinds:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


# --- ConfigMaps -------------------------------------------------------------------------


def test_state_configmaps_are_created_without_data(default: list[Obj]) -> None:
    maps = {m["metadata"]["name"]: m for m in of_kind(default, "ConfigMap")}
    assert set(maps) == {"caravan-logs", "caravan-loggers", "caravan-events", "caravan-settings"}
    for m in maps.values():
        # Data rendered by the chart would be reset by every `helm upgrade`.
        assert "data" not in m and "binaryData" not in m


def test_configmap_prefix_and_toggle() -> None:
    names = {
        m["metadata"]["name"] for m in of_kind(render(**{"configMaps.prefix": "x"}), "ConfigMap")
    }
    assert names == {"x-logs", "x-loggers", "x-events", "x-settings"}
    assert not of_kind(render(**{"configMaps.create": False}), "ConfigMap")


def test_settings_schema_configmap() -> None:
    schema = {"type": "object", "properties": {"app": {"type": "object", "default": {}}}}
    text = "  " + json.dumps(schema, indent=2) + "\n"
    for create in (True, False):
        objs = render(**{"settings.schema": text, "configMaps.create": create})
        cm = one(objs, "ConfigMap", "caravan-settings-schema")
        assert json.loads(cm["data"]["schema.json"]) == schema


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", "42"])
def test_settings_schema_must_be_a_json_object(text: str) -> None:
    assert "settings.schema must be a JSON object" in render_fails(**{"settings.schema": text})


# --- optional objects -------------------------------------------------------------------


def test_rolling_update_never_has_fewer_pods_than_asked(default: list[Obj]) -> None:
    strategy = one(default, "Deployment")["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert "CARAVAN_REUSE_PORT" not in env_of(default)


def test_a_stopping_pod_has_its_delay_and_the_grace_to_match(default: list[Obj]) -> None:
    # Not ready at SIGTERM, still answering for the delay, then 25 s for the rest.
    assert env_of(default)["CARAVAN_SHUTDOWN_DELAY_SECONDS"] == "5"
    pod = one(default, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    longer = render(**{"shutdown.delaySeconds": 20})
    assert env_of(longer)["CARAVAN_SHUTDOWN_DELAY_SECONDS"] == "20"
    assert (
        one(longer, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45
    )
    assert "delaySeconds" in render_fails(**{"shutdown.delaySeconds": -1})


@pytest.mark.parametrize("replicas,expected", [(1, 0), (2, 1), (3, 1)])
def test_pdb_only_with_several_replicas(replicas: int, expected: int) -> None:
    pdbs = of_kind(render(replicaCount=replicas), "PodDisruptionBudget")
    assert len(pdbs) == expected
    for pdb in pdbs:
        assert pdb["spec"]["minAvailable"] == 1


def test_service(default: list[Obj]) -> None:
    service = one(default, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"},
    ]


def test_ingress_toggle(default: list[Obj]) -> None:
    assert not of_kind(default, "Ingress")
    objs = render(
        **{
            "ingress.enabled": True,
            "ingress.className": "nginx",
            "ingress.tls": [{"secretName": "caravan-tls", "hosts": ["caravan.example.com"]}],
        }
    )
    ingress = one(objs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": one(objs, "Service")["metadata"]["name"], "port": {"number": 8080}}
    assert ingress["spec"]["tls"] == [
        {"hosts": ["caravan.example.com"], "secretName": "caravan-tls"}
    ]


def test_network_policy_toggle(default: list[Obj]) -> None:
    assert not of_kind(default, "NetworkPolicy")
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tools"}}}]
    objs = render(**{"networkPolicy.enabled": True, "networkPolicy.from": peers})
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == (one(objs, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": 8080, "protocol": "TCP"}], "from": peers}
    ]
    open_policy = one(render(**{"networkPolicy.enabled": True}), "NetworkPolicy")
    assert "from" not in open_policy["spec"]["ingress"][0]


# --- values schema ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"auth.mode": "bogus"},
        {"bogus": 1},
        {"image.bogus": "x"},
        {"replicaCount": "two"},
        {"logLevel": "LOUD"},
        {"configMaps.prefix": "Not_A_Name"},
        {"service.port": 70000},
        {"extraEnv": [{"name": "CARAVAN_AUTH_MODE", "value": "none"}]},
        # Names go into the admission policy's expressions: only ServiceAccount names.
        {"taskPods.allowedServiceAccounts": ["x' || true || '"]},
        {"taskPods.podPolicy": "restricted-ish"},
    ],
    ids=lambda v: next(iter(v)),
)
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    assert "schema" in render_fails(**values)


def test_values_file_is_valid_json_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"]), "every value needs a schema entry"


# --- manifests/ -------------------------------------------------------------------------


def test_manifests_match_the_chart() -> None:
    result = subprocess.run(
        [str(ROOT / "hack" / "render-manifests.sh"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HELM": helm_bin()},
    )
    assert result.returncode == 0, (
        "manifests/ differs from the chart; run hack/render-manifests.sh\n" + result.stderr
    )


def test_manifests_build_with_kustomize() -> None:
    kubectl = ROOT / ".venv" / "bin" / "kubectl"
    if not kubectl.exists():
        pytest.fail("kubectl not found in .venv: run `make install`")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "manifests")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Namespace") == 1
    assert kinds.count("CustomResourceDefinition") == 1
    assert kinds.count("Deployment") == 1
    for text in (ROOT / "manifests").glob("*.yaml"):
        assert text.read_text().startswith(
            "# generated by hack/render-manifests.sh; do not edit"
        ), text.name


def test_no_nats_by_default(default: list[Obj]) -> None:
    assert not any(name.startswith("CARAVAN_NATS") for name in env_of(default))


def test_nats_url_credentials_and_tls() -> None:
    objs = render(
        **{
            "replicaCount": 3,
            "events.nats.url": "tls://nats.nats-system:4222",
            "events.nats.mergeGraceMs": 1500,
            "events.nats.credentials.secretName": "caravan-nats-creds",
            "events.nats.userPassword.secretName": "caravan-nats-user",
            "events.nats.tls.enabled": True,
            "events.nats.tls.secretName": "caravan-nats-tls",
            "events.nats.tls.clientCertificate": True,
        }
    )
    env = env_of(objs)
    assert env["CARAVAN_NATS_URL"] == "tls://nats.nats-system:4222"
    assert env["CARAVAN_NATS_MERGE_GRACE_MS"] == "1500"
    assert env["CARAVAN_NATS_CREDS"] == "/etc/caravan/nats/creds/nats.creds"
    assert env["CARAVAN_NATS_USER"] == {
        "secretKeyRef": {"name": "caravan-nats-user", "key": "user"}
    }
    assert env["CARAVAN_NATS_PASSWORD"]["secretKeyRef"]["key"] == "password"
    assert env["CARAVAN_NATS_TLS_CA"] == "/etc/caravan/nats/tls/ca.crt"
    assert env["CARAVAN_NATS_TLS_CERT"] == "/etc/caravan/nats/tls/tls.crt"
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"nats-creds": "caravan-nats-creds", "nats-tls": "caravan-nats-tls"}
    mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
    assert mounts["nats-creds"]["readOnly"] and mounts["nats-tls"]["readOnly"]


def test_nats_tls_with_system_cas() -> None:
    env = env_of(render(**{"events.nats.url": "nats://n:4222", "events.nats.tls.enabled": True}))
    assert env["CARAVAN_NATS_TLS"] == "true" and "CARAVAN_NATS_TLS_CA" not in env


@pytest.mark.parametrize("url", ["http://nats:4222", "nats://a b", "nats"])
def test_nats_url_must_be_nats_or_tls(url: str) -> None:
    assert "events" in render_fails(**{"events.nats.url": url})


# --- install notes ----------------------------------------------------------------------


def render_notes(tmp_path: pathlib.Path, **values: Any) -> str:
    """NOTES.txt as `helm install` prints it. `helm template` leaves the notes out, so a
    copy of the chart renders them, with tpl, into one ConfigMap of its own."""
    chart = tmp_path / "caravan"
    shutil.copytree(CHART, chart)
    (chart / "files" / "NOTES.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered-notes\ndata:\n"
        '  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n'
    )
    args = template_args(values)
    args[args.index(str(CHART))] = str(chart)
    objs = [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]
    return str(one(objs, "ConfigMap", "rendered-notes")["data"]["notes"])


@pytest.mark.parametrize("auth", ["kubernetes", "none"])
@pytest.mark.parametrize("host_network", [False, True], ids=["port-forward", "host-network"])
def test_the_notes_use_the_listen_port_everywhere(
    tmp_path: pathlib.Path, auth: str, host_network: bool
) -> None:
    values: dict[str, Any] = {"listen.port": 18282, "auth.mode": auth, "hostNetwork": host_network}
    if host_network:
        values["listen.host"] = "127.0.0.1"
    notes = render_notes(tmp_path, **values)
    urls = re.findall(r"https?://[^\s/]+", notes)
    assert urls and set(urls) == {"http://127.0.0.1:18282"}, urls
    # 8080 is left only as the Service's own port, the far end of the port-forward.
    assert "8080" not in notes.replace("port-forward svc/caravan 18282:8080", "")
    bearer = 'curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18282/v1/jobs'
    assert (bearer in notes) == (auth == "kubernetes")
    assert "caravan status --url http://127.0.0.1:18282" in notes
    if not host_network:
        assert "port-forward svc/caravan 18282:8080 &" in notes


def test_the_notes_by_default(tmp_path: pathlib.Path) -> None:
    notes = render_notes(tmp_path)
    assert set(re.findall(r"https?://[^\s/]+", notes)) == {"http://127.0.0.1:8080"}
    assert "port-forward svc/caravan 8080:8080 &" in notes
