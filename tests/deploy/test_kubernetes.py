"""The Kubernetes manifests (deploy/kubernetes), rendered by the real kustomize and checked
against the Kubernetes API's own schemas, then for what the workshop needs of them."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from queue_manager.settings import Settings
from tests.deploy.kustomize_support import (
    EXAMPLE,
    KUBERNETES,
    Resource,
    copy_with_example_secrets,
    named,
    of_kind,
    pod_specs,
    render,
    uncomment_single_replica_patches,
)

# k3s's stable channel and the newest the validator knows: strict = no field it does not know.
KUBERNETES_VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]
APP = "comfy-workshop"
SECRET = "comfy-workshop-secrets"
APP_PORT = 8188
SETTING_NAMES = {f"CW_{name.upper()}" for name in Settings.model_fields}
SECRET_SETTINGS = {
    f"CW_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if field.annotation is SecretStr
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_with_example_secrets(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="module")
def base(tree: Path) -> list[Resource]:
    return render(tree / "base")


@pytest.fixture(scope="module")
def overlay(tree: Path) -> list[Resource]:
    return render(tree / "overlays" / "example")


@pytest.fixture(scope="module", params=["base", "overlay"])
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    resources: list[Resource] = request.getfixturevalue(request.param)
    return resources


def queue_manager(resources: list[Resource]) -> Resource:
    return named(resources, "Deployment", APP)


def container(deployment: Resource) -> Resource:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    found: Resource = only
    return found


def env_of(deployment: Resource) -> dict[str, Resource]:
    return {entry["name"]: entry for entry in container(deployment).get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_resource_is_valid_for_kubernetes_strictly(
    rendered: list[Resource], version: str
) -> None:
    for resource in rendered:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_validator_refuses_an_unknown_field(base: list[Resource]) -> None:
    # Strict mode is what catches a misspelt or misplaced field, so prove it is on.
    wrong = yaml.safe_load(yaml.safe_dump(queue_manager(base)))
    container(wrong)["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_queue_manager_runs_two_replicas(rendered: list[Resource]) -> None:
    assert queue_manager(rendered)["spec"]["replicas"] == 2


def test_probes_ask_healthz_and_readyz_on_the_app_port(rendered: list[Resource]) -> None:
    deployment = queue_manager(rendered)
    app = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in app["ports"]}
    probes = {
        kind: (app[kind]["httpGet"]["path"], ports[app[kind]["httpGet"]["port"]])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", APP_PORT),
        "livenessProbe": ("/healthz", APP_PORT),
        "readinessProbe": ("/readyz", APP_PORT),
    }
    assert env_of(deployment)["CW_PORT"]["value"] == str(APP_PORT)


def test_secret_settings_come_only_from_secret_references(rendered: list[Resource]) -> None:
    env = env_of(queue_manager(rendered))
    assert "CW_SECRET_KEY" in SECRET_SETTINGS  # a new SecretStr setting must be added here too
    for name in SECRET_SETTINGS:
        assert "value" not in env[name], f"{name} is written into the manifest"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (secret_name(rendered), name)
    assert env["CW_SECRET_KEY"]["valueFrom"]["secretKeyRef"].get("optional") is not True
    for config_map in of_kind(rendered, "ConfigMap"):
        assert not SECRET_SETTINGS & set(config_map.get("data", {}))


def secret_name(resources: list[Resource]) -> str:
    """The Secret the base refers to, by the name the overlay's generator gave it."""
    secrets = of_kind(resources, "Secret")
    return named(secrets, "Secret", SECRET)["metadata"]["name"] if secrets else SECRET


def test_the_base_holds_no_secret(base: list[Resource]) -> None:
    assert of_kind(base, "Secret") == []


def test_the_overlay_makes_the_secret_from_its_example_file(overlay: list[Resource]) -> None:
    (secret,) = of_kind(overlay, "Secret")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(values) == SECRET_SETTINGS
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in env_of(queue_manager(overlay)).values()
        if "valueFrom" in e
    }
    assert refs == {secret["metadata"]["name"]}  # the generated, hashed name


def test_the_secrets_file_is_ignored_by_git() -> None:
    ignored = (KUBERNETES.parents[1] / ".gitignore").read_text().splitlines()
    assert "deploy/kubernetes/overlays/*/secrets.env" in ignored


def test_redis_is_reachable_only_inside_the_cluster(rendered: list[Resource]) -> None:
    for service in of_kind(rendered, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    backends = {
        path["backend"]["service"]["name"]
        for ingress in of_kind(rendered, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {APP}
    policy = named(rendered, "NetworkPolicy", "redis")
    (allowed,) = policy["spec"]["ingress"]
    assert allowed["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": APP}}}]


def test_the_redis_url_names_the_redis_service(rendered: list[Resource]) -> None:
    url = env_of(queue_manager(rendered))["CW_REDIS_URL"]["value"]
    match = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)/0", url)
    assert match is not None, url
    service = named(rendered, "Service", match[1])
    assert [p["port"] for p in service["spec"]["ports"]] == [int(match[2])]


def test_redis_keeps_an_append_only_file_on_its_own_volume(rendered: list[Resource]) -> None:
    redis = named(rendered, "StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 1
    (server,) = redis["spec"]["template"]["spec"]["containers"]
    args = " ".join(server["args"])
    assert "--appendonly yes" in args
    assert "--appendfsync everysec" in args
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in server["volumeMounts"]} == {
        claim["metadata"]["name"]: "/data"
    }
    assert "redis-cli ping" in " ".join(server["readinessProbe"]["exec"]["command"])


def test_the_ingress_keeps_sockets_and_uploads_open(rendered: list[Resource]) -> None:
    sockets = named(rendered, "Ingress", APP)
    workers = named(rendered, "Ingress", f"{APP}-worker")
    nginx = "nginx.ingress.kubernetes.io/"
    for ingress in (sockets, workers):
        notes = ingress["metadata"]["annotations"]
        assert int(notes[nginx + "proxy-read-timeout"]) >= 3600
        assert int(notes[nginx + "proxy-send-timeout"]) >= 3600
    assert int(sockets["metadata"]["annotations"][nginx + "proxy-read-timeout"]) >= 12 * 3600
    assert paths_of(sockets) == [("/", "Prefix")]
    assert paths_of(workers) == [("/worker/v1/", "Prefix")]
    worker_notes = workers["metadata"]["annotations"]
    assert worker_notes[nginx + "proxy-body-size"] == "0"
    assert worker_notes[nginx + "proxy-request-buffering"] == "off"
    assert worker_notes[nginx + "proxy-buffering"] == "off"
    # Participants' uploads pass (the app answers the borderline ones itself).
    body = sockets["metadata"]["annotations"][nginx + "proxy-body-size"]
    assert int(body.removesuffix("m")) * 2**20 > Settings().max_upload_bytes


def paths_of(ingress: Resource) -> list[tuple[str, str]]:
    (rule,) = ingress["spec"]["rules"]
    return [(p["path"], p["pathType"]) for p in rule["http"]["paths"]]


def test_every_ingress_backend_is_the_app_service_port(rendered: list[Resource]) -> None:
    service = named(rendered, "Service", APP)
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for ingress in of_kind(rendered, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"]["name"] in port_names


def test_the_replicas_share_one_read_write_many_data_folder(rendered: list[Resource]) -> None:
    deployment = queue_manager(rendered)
    pod = deployment["spec"]["template"]["spec"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    data_dir = env_of(deployment)["CW_DATA_DIR"]["value"]
    claim = named(rendered, "PersistentVolumeClaim", claims[mounts[data_dir]])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_overlay_replaces_the_image_with_a_tagged_one(overlay: list[Resource]) -> None:
    image = container(queue_manager(overlay))["image"]
    assert image == "registry.example.com/comfy-workshop:0.1.0"
    images = [c["image"] for spec in pod_specs(overlay) for c in spec["containers"]]
    assert not [i for i in images if i.endswith(":latest") or ":" not in i]


def test_the_overlay_sets_namespace_host_class_and_tls(overlay: list[Resource]) -> None:
    for resource in overlay:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "comfy-workshop"
    issuers = []
    for ingress in of_kind(overlay, "Ingress"):
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == "workshop.example.com"
        assert ingress["spec"]["ingressClassName"] == "traefik"
        assert ingress["spec"]["tls"] == [
            {"hosts": ["workshop.example.com"], "secretName": "workshop-example-com-tls"}
        ]
        issuers.append(ingress["metadata"]["annotations"].get("cert-manager.io/cluster-issuer"))
    # One Certificate for the shared TLS Secret: two would overwrite each other.
    assert sorted(issuers, key=str) == sorted([None, "letsencrypt"], key=str)
    claim = named(overlay, "PersistentVolumeClaim", "workshop-data")
    assert claim["spec"]["storageClassName"] == "longhorn"


def test_every_pod_runs_as_a_non_root_user(rendered: list[Resource]) -> None:
    for spec in pod_specs(rendered):
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for one in spec["containers"]:
            assert one["securityContext"]["allowPrivilegeEscalation"] is False
            assert one["securityContext"]["readOnlyRootFilesystem"] is True
            assert one["securityContext"]["capabilities"]["drop"] == ["ALL"]
    pod = queue_manager(rendered)["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        10001,
        10001,
    )


def test_the_app_gets_a_writable_tmp_beside_its_read_only_root(
    rendered: list[Resource],
) -> None:
    deployment = queue_manager(rendered)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_a_disruption_budget_keeps_one_replica(rendered: list[Resource]) -> None:
    budget = named(rendered, "PodDisruptionBudget", APP)
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == queue_manager(rendered)["spec"]["selector"]


def cw_names_in(value: Any) -> set[str]:
    return set(re.findall(r"\bCW_[A-Z0-9_]+\b", yaml.safe_dump(value)))


def test_every_cw_name_in_the_manifests_is_a_setting(rendered: list[Resource]) -> None:
    assert cw_names_in(rendered) - SETTING_NAMES == set()


def test_every_cw_name_in_the_files_and_comments_is_a_setting() -> None:
    files = [p for p in KUBERNETES.rglob("*") if p.is_file() and p.name != "secrets.env"]
    named_in_files = set().union(*(cw_names_in(p.read_text()) for p in files))
    assert named_in_files
    assert named_in_files - SETTING_NAMES == set()


def test_the_rendered_settings_start_a_server_outside_local_mode(
    overlay: list[Resource], monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = queue_manager(overlay)
    (source,) = container(deployment)["envFrom"]
    values = dict(named(overlay, "ConfigMap", source["configMapRef"]["name"])["data"])
    secret = named(overlay, "Secret", SECRET)["data"]
    for name, entry in env_of(deployment).items():
        if "value" in entry:
            values[name] = entry["value"]
        else:
            values[name] = base64.b64decode(secret[entry["valueFrom"]["secretKeyRef"]["key"]])
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value if isinstance(value, str) else value.decode())
    settings = Settings(_env_file=None)
    assert settings.local_mode is False
    assert settings.cookie_secure is True
    assert settings.listening_refusal() is None
    assert settings.public_url == "https://workshop.example.com/"
    assert str(settings.data_dir) == "/data"


def test_the_single_replica_variant_in_the_overlay_comments_renders(tmp_path: Path) -> None:
    tree = copy_with_example_secrets(tmp_path)
    uncomment_single_replica_patches(tree / "overlays" / "example" / "kustomization.yaml")
    resources = render(tree / "overlays" / "example")
    deployment = queue_manager(resources)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = named(resources, "PersistentVolumeClaim", "workshop-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert of_kind(resources, "PodDisruptionBudget") == []
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_traefik_config_lifts_the_entrypoint_read_timeouts() -> None:
    config = yaml.safe_load((EXAMPLE / "traefik-config.yaml").read_text())
    assert (config["kind"], config["metadata"]) == (
        "HelmChartConfig",
        {"name": "traefik", "namespace": "kube-system"},
    )
    values = yaml.safe_load(config["spec"]["valuesContent"])
    arguments = set(values["additionalArguments"])
    for entrypoint in ("web", "websecure"):
        prefix = f"--entryPoints.{entrypoint}.transport.respondingTimeouts"
        assert f"{prefix}.readTimeout=0s" in arguments
        assert f"{prefix}.writeTimeout=0s" in arguments
