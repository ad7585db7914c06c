"""cluster/local.yaml's one-machine layout, started for real.

The layout's own commands start a head and a worker with ``ray start`` inside
private Linux namespaces (PID, network, mount): only the loopback interface,
a private /tmp/ray and /dev/shm, and ``ray stop`` sees only these processes,
so nothing of the test session's Ray or of other work on the machine is
touched, and the kernel ends every process of the run when it exits. A job
then has to run on both nodes; once ``tradepulse sweep`` exists, the layout's
sweep runs against the cluster too.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deploy_support import REPO_ROOT, load_yaml_documents, sweep_command

# --kill-child: if the test kills unshare (timeout), the namespace's init dies
# with it, and the kernel then ends every process of the run.
UNSHARE = ["unshare", "--pid", "--net", "--mount", "--fork", "--kill-child", "--mount-proc"]

# Runs inside the cluster: both nodes alive, and tasks spread over both.
PROBE = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")

@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
def node_of_task(_):
    import time
    time.sleep(0.2)
    return ray.get_runtime_context().get_node_id()

alive = [node for node in ray.nodes() if node["Alive"]]
print(json.dumps({
    "alive": len(alive),
    "cpus": sum(node["Resources"].get("CPU", 0) for node in alive),
    "task_nodes": len(set(ray.get([node_of_task.remote(i) for i in range(6)]))),
}))
"""


def _namespaces_available() -> str | None:
    """Return why the namespaces cannot be made here, or None."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux namespaces (platform {sys.platform})"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs util-linux unshare and iproute2 ip"
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cannot create namespaces here (needs root): {probe.stderr.strip()}"
    return None


def _expected_sweep_rows() -> tuple[int, int]:
    """Combinations of fast=5:50:5 x slow=20:200:10, and how many violate fast < slow."""
    fast = range(5, 51, 5)
    slow = range(20, 201, 10)
    valid = sum(1 for f in fast for s in slow if f < s)
    return valid, len(fast) * len(slow) - valid


def test_expected_sweep_size_is_derived_by_hand() -> None:
    # fast 5, 10, 15 precede every slow (3 x 19); fast 20..50 pair with the slow
    # values above them: 18, 18, 17, 17, 16, 16, 15.
    assert _expected_sweep_rows() == (3 * 19 + 18 + 18 + 17 + 17 + 16 + 16 + 15, 16)


@pytest.mark.slow
def test_one_machine_layout_starts_a_two_node_cluster(tmp_path: Path) -> None:
    reason = _namespaces_available()
    if reason:
        pytest.skip(reason)
    config = load_yaml_documents(REPO_ROOT / "cluster" / "local.yaml")[0]
    layout = config["layouts"]["one-machine"]
    _, real_sweep = sweep_command()
    work = tmp_path / "work"
    work.mkdir()
    (work / "golden").symlink_to(REPO_ROOT / "golden")
    (tmp_path / "home").mkdir()
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    exports = "\n".join(
        f"export {key}={shlex.quote(value)}" for key, value in config["environment"].items()
    )
    starts = "\n".join([layout["head"]["start"], *(w["start"] for w in layout["workers"])])
    sweep = f"{layout['sweep']} > {tmp_path / 'sweep.json'}" if real_sweep else ""
    script = textwrap.dedent(
        f"""\
        set -euo pipefail
        ip link set lo up
        mkdir -p /tmp/ray
        mount -t tmpfs tmpfs /tmp/ray
        mount -t tmpfs tmpfs /dev/shm
        export HOME={shlex.quote(str(tmp_path / "home"))}
        export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH
        {exports}
        ray get-auth-token --generate > /dev/null
        """
    )
    script += f"{starts}\npython {tmp_path / 'probe.py'} {layout['head']['address']}"
    script += f" > {tmp_path / 'probe.json'}\ncd {work}\n{sweep}\n{layout['stop']}\n"

    run = subprocess.run(
        [*UNSHARE, "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    probe = json.loads((tmp_path / "probe.json").read_text(encoding="utf-8"))
    assert probe == {"alive": 2, "cpus": 2.0, "task_nodes": 2}
    if real_sweep:
        import polars as pl

        rows, skipped = _expected_sweep_rows()
        summary = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
        out = work / "sweeps" / "sma_cross-nasdaq"
        table = pl.read_parquet(sorted(out.rglob("*.parquet")))
        assert summary["skipped"] == skipped
        assert table.height == rows
        assert table.select("fast", "slow").unique().height == rows
