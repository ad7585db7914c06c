"""deploy/kuberay/rayservice.yaml: the live application, as serve/config.yaml runs it locally."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from deploy_support import REPO_ROOT, load_yaml_documents

from tradepulse.serve.runtime import (
    APPLICATION_ENVIRONMENT,
    CLUSTER_ENVIRONMENT,
    LOGGING_CONFIG,
    load_serve_config,
)
from tradepulse.serve.settings import parse_app_args

KUBERAY = REPO_ROOT / "deploy" / "kuberay"


def _document(file: str, kind: str) -> dict[str, Any]:
    (document,) = [d for d in load_yaml_documents(KUBERAY / file) if d["kind"] == kind]
    return document


def _serve_config(tmp_path: Path) -> Any:
    service = _document("rayservice.yaml", "RayService")
    path = tmp_path / "embedded.yaml"
    path.write_text(service["spec"]["serveConfigV2"])
    return load_serve_config(path)


def _head(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return service["spec"]["rayClusterConfig"]["headGroupSpec"]


def _mounts(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Return mountPath -> the volume mounted there, for the pod's first container."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    return {
        mount["mountPath"]: volumes[mount["name"]] for mount in pod["containers"][0]["volumeMounts"]
    }


def _volume_of(path: str, mounts: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    owners = [mount for mount in mounts if Path(path).is_relative_to(mount)]
    assert owners, f"{path} is on no mounted volume"
    return mounts[max(owners, key=len)]


def test_the_embedded_serve_config_is_the_local_one_with_pod_paths(tmp_path: Path) -> None:
    embedded = _serve_config(tmp_path)
    local = load_serve_config(REPO_ROOT / "serve" / "config.yaml")

    assert embedded.http_options.host == "0.0.0.0"  # the pod's interface, behind a Service
    assert local.http_options.host == "127.0.0.1"
    assert embedded.http_options.port == local.http_options.port
    (pod_app,) = embedded.applications
    (laptop_app,) = local.applications
    assert pod_app.import_path == laptop_app.import_path
    assert pod_app.route_prefix == laptop_app.route_prefix
    assert set(laptop_app.args) <= set(pod_app.args)
    args = parse_app_args(pod_app.args)  # valid for the builder
    for path in (args.journal, args.service_config, args.api_keys_file):
        assert path is not None
        assert Path(path).is_absolute(), path


def test_the_journal_writer_is_one_replica_on_the_head_with_the_journal_volume(
    tmp_path: Path,
) -> None:
    service = _document("rayservice.yaml", "RayService")
    (app,) = _serve_config(tmp_path).applications
    (api,) = [d for d in app.deployments if d.name == "TradingApi"]
    head = _head(service)
    head_resources = json.loads(yaml.safe_load(head["rayStartParams"]["resources"]))
    args = parse_app_args(app.args)
    mounts = _mounts(head["template"]["spec"])
    pvc = _document("journal-pvc.yaml", "PersistentVolumeClaim")

    assert api.num_replicas == 1
    assert api.ray_actor_options.resources == {"journal": 1}
    assert head_resources == {"journal": 1}  # only the head offers it
    for group in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        assert "resources" not in group["rayStartParams"]
    journal_volume = _volume_of(args.journal, mounts)
    assert journal_volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert service["spec"]["upgradeStrategy"]["type"] == "None"  # never two writers


def test_keys_and_service_config_come_from_mounted_secret_and_config_map(
    tmp_path: Path,
) -> None:
    service = _document("rayservice.yaml", "RayService")
    (app,) = _serve_config(tmp_path).applications
    args = parse_app_args(app.args)
    mounts = _mounts(_head(service)["template"]["spec"])
    assert args.api_keys_file is not None
    assert args.service_config is not None

    keys = _volume_of(args.api_keys_file, mounts)
    config = _volume_of(args.service_config, mounts)

    assert keys["secret"]["secretName"] == "tradepulse-api-keys"
    assert Path(args.api_keys_file).name == "keys.yaml"
    assert config["configMap"]["name"] == "tradepulse-service"
    assert Path(args.service_config).name == "service.yaml"
    header = (KUBERAY / "rayservice.yaml").read_text(encoding="utf-8")
    # The documented commands create exactly what the pod mounts, from the shipped file.
    assert "--from-file=service.yaml=serve/service.yaml" in header
    assert "create secret generic tradepulse-api-keys --from-file=keys.yaml=" in header
    assert (REPO_ROOT / "serve" / "service.yaml").is_file()


def test_the_strategy_runners_autoscale_on_any_pod(tmp_path: Path) -> None:
    from tradepulse.serve.runners import STRATEGY_RUNNERS, runner_deployment_options

    (app,) = _serve_config(tmp_path).applications
    (laptop,) = load_serve_config(REPO_ROOT / "serve" / "config.yaml").applications
    (runners,) = [d for d in app.deployments if d.name == STRATEGY_RUNNERS]
    scaling = runner_deployment_options(parse_app_args(app.args).runners)["autoscaling_config"]
    local = runner_deployment_options(parse_app_args(laptop.args).runners)["autoscaling_config"]

    assert scaling["min_replicas"] >= 1
    assert scaling["max_replicas"] > scaling["min_replicas"]  # it scales out under load
    assert local["max_replicas"] > local["min_replicas"]
    # The manifest sets no replica count or scaling of its own: args.runners rules.
    assert runners.model_fields_set == {"name", "ray_actor_options"}
    assert runners.ray_actor_options.num_cpus == 0
    assert not runners.ray_actor_options.resources  # not pinned to the journal's pod


def test_both_configs_ping_the_runners_every_15_seconds_explicitly(tmp_path: Path) -> None:
    (app,) = _serve_config(tmp_path).applications
    (laptop,) = load_serve_config(REPO_ROOT / "serve" / "config.yaml").applications

    for args in (app.args, laptop.args):
        assert args["runners"]["ping_seconds"] == 15  # written out, not the default
        assert parse_app_args(args).runners.ping_seconds == 15.0


def _container_env(group: Mapping[str, Any]) -> dict[str, str]:
    """Return the Ray container's environment (name -> value) of a head or worker group."""
    (container,) = [
        c for c in group["template"]["spec"]["containers"] if c["name"].startswith("ray-")
    ]
    return {item["name"]: item["value"] for item in container.get("env", [])}


def test_the_pods_and_the_application_carry_the_serve_settings_of_tradepulse_serve(
    tmp_path: Path,
) -> None:
    cluster = _document("rayservice.yaml", "RayService")["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    embedded = _serve_config(tmp_path)
    (pod_app,) = embedded.applications
    local = load_serve_config(REPO_ROOT / "serve" / "config.yaml")
    (laptop_app,) = local.applications

    assert len(groups) >= 2
    for group in groups:
        env = _container_env(group)
        # Every Ray process of every pod reads these when it starts.
        assert {name: env.get(name) for name in CLUSTER_ENVIRONMENT} == dict(CLUSTER_ENVIRONMENT)
        # Per-application settings live in the application, not in the pods.
        assert not set(APPLICATION_ENVIRONMENT) & set(env)
    for app in (pod_app, laptop_app):
        assert app.runtime_env["env_vars"] == dict(APPLICATION_ENVIRONMENT)
    for config in (embedded, local):
        logging = config.logging_config
        assert logging is not None
        assert {name: getattr(logging, name) for name in LOGGING_CONFIG} == dict(LOGGING_CONFIG)
