"""cluster/: the local multi-node layout and the VM cluster-launcher config."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_support import (
    REPO_ROOT,
    check_command,
    check_sweep,
    load_yaml_documents,
    parse_image,
    pinned_ray_version,
    python_tag,
    ray_cli,
    shell_commands,
)

import tradepulse

CLUSTER = REPO_ROOT / "cluster"
DOCUMENTATION_NET = ipaddress.ip_network("192.0.2.0/24")  # RFC 5737: never a real host


def _load(name: str) -> dict[str, Any]:
    documents = load_yaml_documents(CLUSTER / name)
    assert len(documents) == 1, name
    document: dict[str, Any] = documents[0]
    return document


def _ray_start(command_text: str) -> dict[str, list[str]]:
    """Check the one ``ray start`` in ``command_text``; return its options."""
    starts = [argv for argv in shell_commands(command_text) if argv[:2] == ["ray", "start"]]
    assert len(starts) == 1, command_text
    check = check_command(ray_cli(), starts[0][1:])
    assert check.problems == [], command_text
    return {**check.options, **{flag: [] for flag in check.flags}}


def _layouts() -> list[str]:
    return sorted(_load("local.yaml")["layouts"])


def test_cluster_folder_holds_the_local_layout_and_the_vm_config() -> None:
    assert {"local.yaml", "vm-cluster.yaml"} <= {path.name for path in CLUSTER.iterdir()}


def _strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for sub_key, value in node.items():
            yield from _strings(value, str(sub_key))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


@pytest.mark.parametrize("path", sorted(CLUSTER.glob("*.y*ml")), ids=lambda p: p.name)
def test_every_cluster_config_names_the_pinned_ray(path: Path) -> None:
    ray_version = pinned_ray_version()
    named = []
    for document in load_yaml_documents(path):
        for key, text in _strings(document):
            if key == "ray_version":
                named.append(text)
            if key in ("image", "head_image", "worker_image"):
                match = re.fullmatch(r"rayproject/ray:([0-9.]+)(-.*)?", text)
                named.append(match.group(1) if match else parse_image(text).ray_version)
            named += re.findall(r"\bray(?:\[[a-z,]+\])?==([0-9][0-9.]*)", text)

    assert named, f"{path.name} names no Ray version (ray_version, an image or ray==)"
    assert set(named) == {ray_version}


def test_local_layout_names_the_pinned_versions() -> None:
    layout = _load("local.yaml")

    assert layout["ray_version"] == pinned_ray_version()
    assert f"py{layout['python'].replace('.', '')}" == python_tag()
    assert layout["environment"] == {"RAY_AUTH_MODE": "token"}
    assert _layouts() == ["one-machine", "several-machines"]


@pytest.mark.parametrize("name", _layouts())
def test_local_layout_commands_exist_and_agree_on_the_head(name: str) -> None:
    layout = _load("local.yaml")["layouts"][name]
    host, _, port = layout["head"]["address"].rpartition(":")

    head = _ray_start(layout["head"]["start"])
    workers = [_ray_start(worker["start"]) for worker in layout["workers"]]
    sweep = check_sweep(shell_commands(layout["sweep"])[0])

    assert "head" in head
    assert head["port"] == [port]
    assert head["node_ip_address"] == [host]
    assert workers
    for worker in workers:
        assert "head" not in worker
        assert worker["address"] == [layout["head"]["address"]]
    assert sweep.problems == []
    assert sweep.options["address"] == [layout["head"]["address"]]
    assert shell_commands(layout["stop"]) == [["ray", "stop"]]
    if name == "one-machine":
        ports = [node.get("dashboard_agent_listen_port", ["52365"]) for node in [head, *workers]]
        assert len({tuple(p) for p in ports}) == len(ports), "one agent port per node"
    else:
        addresses = [head["node_ip_address"][0]]
        addresses += [worker["node_ip_address"][0] for worker in workers]
        assert len(set(addresses)) == len(addresses)
        assert all(ipaddress.ip_address(a) in DOCUMENTATION_NET for a in addresses)


def _ray_schema() -> dict[str, Any]:
    spec = importlib.util.find_spec("ray")
    assert spec is not None
    assert spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "autoscaler" / "ray-schema.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def test_vm_config_is_accepted_by_the_cluster_launcher() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load("vm-cluster.yaml")
    jsonschema.Draft7Validator(_ray_schema()).validate(config)

    # What `ray up` does before it contacts a host (Ray is pinned, so this
    # private API is the one `ray up` of that version runs).
    prepared = prepare_config(config)
    validate_config(prepared)

    node_type = prepared["available_node_types"][prepared["head_node_type"]]
    workers = config["provider"]["worker_ips"]
    assert node_type["min_workers"] == node_type["max_workers"] == len(workers)
    hosts = [config["provider"]["head_ip"], *workers]
    assert len(set(hosts)) == len(hosts)
    assert all(ipaddress.ip_address(host) in DOCUMENTATION_NET for host in hosts)


def test_vm_config_runs_the_pinned_image_with_token_auth() -> None:
    config = _load("vm-cluster.yaml")
    manifest = load_yaml_documents(REPO_ROOT / "deploy" / "kuberay" / "raycluster.yaml")[0]
    kuberay_image = manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]

    tag = parse_image(config["docker"]["image"])

    assert (tag.package_version, tag.ray_version, tag.python_tag) == (
        tradepulse.__version__,
        pinned_ray_version(),
        python_tag(),
    )
    assert config["docker"]["image"] == kuberay_image
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    assert config["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}
    assert any(option.endswith(":/data") for option in config["docker"]["run_options"])


def test_vm_config_start_commands_exist_and_agree_on_the_port() -> None:
    config = _load("vm-cluster.yaml")
    [head_start] = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    [worker_start] = [c for c in config["worker_start_ray_commands"] if "ray start" in c]

    head = _ray_start(head_start)
    worker = _ray_start(worker_start)

    assert "head" in head
    assert head["autoscaling_config"] == ["~/ray_bootstrap_config.yaml"]
    assert worker["address"] == [f"$RAY_HEAD_IP:{head['port'][0]}"]
    assert shell_commands(config["head_start_ray_commands"][0]) == [["ray", "stop"]]
