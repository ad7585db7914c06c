"""deploy/kuberay/ and deploy/docker/: valid against the KubeRay CRDs, pinned like the package."""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_support import (
    REPO_ROOT,
    SHARED_CRD_DIR,
    VENDORED_CRD_DIR,
    CrdSchema,
    check_sweep,
    crd_validator,
    load_yaml_documents,
    metadata_problems,
    package_version,
    parse_image,
    pinned_ray_version,
    python_tag,
)

import tradepulse

KUBERAY = REPO_ROOT / "deploy" / "kuberay"
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
MANIFEST_FILES = sorted([*KUBERAY.glob("*.yaml"), *KUBERAY.glob("*.yml")])
QUANTITY = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i|[kMGTPE])?$"
#: Core Kubernetes kinds the folder may hold, with the subset of their schema we check.
CORE_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "PersistentVolumeClaim"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "v1"},
            "kind": {"const": "PersistentVolumeClaim"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["accessModes", "resources"],
                "additionalProperties": False,
                "properties": {
                    "accessModes": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "enum": [
                                "ReadWriteOnce",
                                "ReadOnlyMany",
                                "ReadWriteMany",
                                "ReadWriteOncePod",
                            ]
                        },
                    },
                    "storageClassName": {"type": "string"},
                    "resources": {
                        "type": "object",
                        "required": ["requests"],
                        "additionalProperties": False,
                        "properties": {
                            "requests": {
                                "type": "object",
                                "required": ["storage"],
                                "properties": {"storage": {"type": "string", "pattern": QUANTITY}},
                            }
                        },
                    },
                },
            },
        },
    }
}


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFEST_FILES:
        for index, document in enumerate(load_yaml_documents(path)):
            found.append((f"{path.name}#{index}", document))
    return found


def _by_kind(kind: str) -> dict[str, Any]:
    matches = [document for _, document in _manifests() if document.get("kind") == kind]
    assert len(matches) == 1, f"expected one {kind} in deploy/kuberay, found {len(matches)}"
    return matches[0]


def _by_name(kind: str, name: str) -> dict[str, Any]:
    matches = [
        document
        for _, document in _manifests()
        if document.get("kind") == kind and document["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} {name!r} in deploy/kuberay"
    return matches[0]


def _errors(validator: Any, document: Mapping[str, Any]) -> list[str]:
    return sorted(
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    )


def _crd_errors(document: Mapping[str, Any]) -> list[str]:
    return _errors(crd_validator(document["apiVersion"], document["kind"]), document)


def _ray_containers(cluster_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield cluster_spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    for group in cluster_spec.get("workerGroupSpecs", []):
        yield group["template"]["spec"]["containers"][0]


def _walk(node: object) -> Iterator[tuple[str, object]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_the_folder_holds_the_cluster_the_job_and_the_volume() -> None:
    kinds = sorted(document["kind"] for _, document in _manifests())

    assert {"PersistentVolumeClaim", "RayCluster", "RayJob"} <= set(kinds)


@pytest.mark.parametrize(("name", "document"), _manifests(), ids=[n for n, _ in _manifests()])
def test_manifest_is_valid_for_its_kind(
    name: str, document: dict[str, Any], crd_schemas: dict[tuple[str, str], CrdSchema]
) -> None:
    key = (document.get("apiVersion"), document.get("kind"))
    if key in CORE_SCHEMAS:
        errors = _errors(jsonschema.Draft202012Validator(CORE_SCHEMAS[key]), document)
    else:
        assert key in crd_schemas, f"{name}: no CRD serves {key}; known: {sorted(crd_schemas)}"
        assert crd_schemas[key].storage, f"{name}: {key[0]} is not the CRD's storage version"
        errors = _crd_errors(document)

    assert errors + metadata_problems(document) == [], name


# The validator must refuse what `kubectl apply` refuses: each case breaks a
# valid manifest in one way and names what the error must say.
BREAKAGES = [
    (
        "RayCluster",
        lambda m: m["spec"]["headGroupSpec"].update(rayStartParam={}),
        "Additional properties are not allowed ('rayStartParam'",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["workerGroupSpecs"][0].update(maxReplicas="eight"),
        "'eight' is not of type 'integer'",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["workerGroupSpecs"][0].pop("groupName"),
        "'groupName' is a required property",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
            "resources"
        ]["limits"].update(memory="8 GB"),
        "does not match",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["autoscalerOptions"].update(idleTimeoutSeconds=2**31),
        "is not a 'int32'",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["autoscalerOptions"].update(upscalingMode="Fast"),
        "is not one of",
    ),
    (
        "RayCluster",
        lambda m: m["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"].append(
            {"containerPort": 8265, "name": "dashboard-again"}
        ),
        "duplicate entry",
    ),
    (
        "RayCluster",
        lambda m: m["spec"].update(managedBy="someone-else"),
        "the managedBy field value must be either",
    ),
    (
        "RayJob",
        lambda m: m["spec"].update(deletionStrategy={"onSuccess": {"policy": "DeleteCluster"}}),
        "deletionStrategy requires either BOTH onSuccess and onFailure",
    ),
    ("RayJob", lambda m: m["spec"].update(entrypoint=["tradepulse"]), "is not of type 'string'"),
]


@pytest.mark.parametrize(("kind", "breakage", "message"), BREAKAGES)
def test_validator_refuses_a_broken_manifest(
    kind: str, breakage: Any, message: str, crd_schemas: dict[tuple[str, str], CrdSchema]
) -> None:
    manifest = copy.deepcopy(_by_kind(kind))
    breakage(manifest)

    errors = _crd_errors(manifest)

    assert any(message in error for error in errors), errors


def test_validator_refuses_a_cel_rule_it_cannot_evaluate() -> None:
    from deploy_support import _KubernetesValidator

    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 2"}]}

    errors = [e.message for e in _KubernetesValidator(schema).iter_errors("abc")]

    assert len(errors) == 1
    assert "no offline evaluator" in errors[0]


def test_rayjob_runs_on_the_raycluster_spec() -> None:
    cluster = _by_kind("RayCluster")
    job = _by_kind("RayJob")

    assert job["spec"]["rayClusterSpec"] == cluster["spec"]


def test_images_and_versions_follow_the_package() -> None:
    ray_version = pinned_ray_version()
    images = [
        value
        for _, document in _manifests()
        for key, value in _walk(document)
        if key == "image" and isinstance(value, str)
    ]

    assert package_version() == tradepulse.__version__
    assert len(images) >= 4  # head + worker in the RayCluster and in the RayJob
    assert len(set(images)) == 1, images
    tag = parse_image(images[0])
    assert (tag.package_version, tag.ray_version, tag.python_tag) == (
        tradepulse.__version__,
        ray_version,
        python_tag(),
    )
    for spec in (
        _by_kind("RayCluster")["spec"],
        _by_kind("RayJob")["spec"]["rayClusterSpec"],
        _by_kind("RayService")["spec"]["rayClusterConfig"],
    ):
        assert spec["rayVersion"] == ray_version


def test_dockerfile_builds_the_tagged_image_from_the_pinned_ray() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    image = _by_kind("RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "image"
    ]

    assert args == {"RAY_VERSION": pinned_ray_version(), "PYTHON_TAG": python_tag()}
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-\$\{PYTHON_TAG\}$", text, re.M)
    assert re.search(r"^RUN pip install --no-cache-dir \. ", text, re.M)
    assert f"-t {image} ." in text  # the documented build command makes the manifests' tag
    allowed = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "README.md", "tradepulse"):
        assert f"!{needed}" in allowed
        assert (REPO_ROOT / needed).exists()


_CLUSTER_SPEC = {"RayCluster": "spec", "RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob", "RayService"])
def test_cluster_autoscales_with_sized_pods_and_probes(kind: str) -> None:
    document = _by_kind(kind)
    spec = document["spec"] if kind == "RayCluster" else document["spec"][_CLUSTER_SPEC[kind]]

    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    for group in spec["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"]
    for container in _ray_containers(spec):
        resources = container["resources"]
        assert set(resources["limits"]) >= {"cpu", "memory"}
        assert resources["requests"] == resources["limits"], container["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"].startswith("/api/"), container["name"]


def test_no_secret_is_written_in_the_manifests() -> None:
    secret_name = re.compile(r"(TOKEN|PASSWORD|SECRET|CREDENTIAL|API_?KEY)", re.IGNORECASE)
    for name, document in _manifests():
        assert document["kind"] != "Secret", name
        for key, value in _walk(document):
            if key == "env":
                for variable in value:  # type: ignore[attr-defined]
                    assert not (secret_name.search(variable["name"]) and "value" in variable), name
            assert key not in ("redisPassword", "password"), name
    assert _by_kind("RayCluster")["spec"]["authOptions"] == {"mode": "token"}
    assert _by_kind("RayService")["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}


def _pvc_mounts(cluster_spec: Mapping[str, Any]) -> dict[str, str]:
    """Return mountPath -> claimName for the head container's volumes backed by a PVC."""
    pod = cluster_spec["headGroupSpec"]["template"]["spec"]
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in pod.get("volumes", [])
        if "persistentVolumeClaim" in volume
    }
    return {
        mount["mountPath"]: claims[mount["name"]]
        for mount in pod["containers"][0].get("volumeMounts", [])
        if mount["name"] in claims
    }


def test_rayjob_sweep_is_a_real_resumable_command_on_persistent_storage() -> None:
    job = _by_kind("RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    mounts = _pvc_mounts(job["spec"]["rayClusterSpec"])
    pvc_name = _by_name("PersistentVolumeClaim", "tradepulse-data")["metadata"]["name"]

    check = check_sweep(argv)

    assert check.problems == []
    assert "resume" in check.flags  # a retry or re-submission continues
    assert "address" not in check.options  # the job supervisor sets RAY_ADDRESS
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert set(mounts.values()) == {pvc_name}
    for path in (check.arguments[0], check.options["out"][0]):
        assert any(Path(path).is_relative_to(mount) for mount in mounts), path


def test_vendored_crds_equal_the_shared_ones() -> None:
    """deploy/kuberay-crds is a byte-for-byte copy of ../shared/kuberay-crds (when present)."""
    vendored = sorted(path.name for path in VENDORED_CRD_DIR.iterdir())
    assert {"ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml"} <= set(
        vendored
    )
    if not SHARED_CRD_DIR.is_dir():
        pytest.skip(f"{SHARED_CRD_DIR} is absent: only the vendored copy can be checked")
    assert vendored == sorted(path.name for path in SHARED_CRD_DIR.iterdir())
    for name in vendored:
        assert (VENDORED_CRD_DIR / name).read_bytes() == (SHARED_CRD_DIR / name).read_bytes(), name
