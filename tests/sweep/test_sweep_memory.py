"""Memory of a process tree: descendants count, peaks are kept, both process listings agree."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradepulse.executor import peak_rss_mb
from tradepulse.sweep import (
    ProcessTreeMemory,
    TreeMemory,
    memory,
    process_tree_memory,
    process_tree_rss_mb,
)

CHILD_MB = 200
_HOLDER = f"""
import sys, time
block = b"\\x01" * ({CHILD_MB} * 1024 * 1024)  # touched: resident
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    """A child process holding 200 MiB until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


@pytest.mark.parametrize("use_psutil", [True, False])
def test_descendants_count(child: subprocess.Popen[str], use_psutil: bool) -> None:
    alone = process_tree_memory(child.pid, use_psutil=use_psutil)

    tree = process_tree_memory(use_psutil=use_psutil)

    assert alone.processes == 1
    assert alone.rss_mb >= CHILD_MB
    assert tree.processes >= 2
    assert tree.rss_mb >= alone.rss_mb + 20.0  # the child plus this interpreter
    assert tree.pss_mb is not None
    assert CHILD_MB * 0.9 <= alone.pss_mb <= alone.rss_mb  # type: ignore[operator]
    assert process_tree_rss_mb(child.pid) == pytest.approx(alone.rss_mb, rel=0.05)


def test_an_unknown_process_falls_back_to_this_ones_peak() -> None:
    gone = process_tree_memory(2**30)

    assert gone.processes == 1
    assert gone.pss_mb is None
    assert gone.rss_mb == pytest.approx(peak_rss_mb(), rel=0.05)


def test_monitor_keeps_the_peaks() -> None:
    samples = iter([100.0, 300.0, 200.0, 250.0, 150.0, 120.0, 110.0, 90.0] + [80.0] * 1000)
    asked: list[bool] = []

    def fake(proportional: bool) -> TreeMemory:
        asked.append(proportional)
        value = next(samples)
        return TreeMemory(rss_mb=value, pss_mb=value / 2 if proportional else None, processes=3)

    monitor = ProcessTreeMemory(interval_s=0.001, pss_interval_s=0.002, sample=fake)
    monitor.sample()
    monitor.sample(proportional=False)
    monitor.sample(proportional=False)

    assert monitor.peak_pss_mb == 50.0  # only the first sample measured PSS
    assert monitor.peak_rss_mb == max(300.0, peak_rss_mb())
    with monitor:
        while len(asked) < 10:
            pass
    # PSS every other sample in the thread.
    assert any(asked[4:])
    assert not all(asked[4:])
    assert monitor.peak_pss_mb == 125.0  # 250 was sampled with PSS
    assert "ProcessTreeMemory(interval_s=0.001" in repr(monitor)


def test_monitor_thread_measures_this_process() -> None:
    with ProcessTreeMemory(interval_s=0.01) as monitor:
        block = b"\x01" * (64 * 1024 * 1024)

    assert len(block) > 0
    assert monitor.peak_rss_mb >= 64.0
    assert monitor.peak_pss_mb is not None
    assert monitor.peak_pss_mb >= 64.0


def _fake_process(
    proc: Path, pid: int, parent: int, command: str, rss_kib: int | None, pss_kib: int | None
) -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({command}) S {parent} {pid} {pid} 0 -1 4194560\n")
    status = f"Name:\t{command}\nPid:\t{pid}\nPPid:\t{parent}\n"
    if rss_kib is not None:
        status += f"VmRSS:\t{rss_kib} kB\n"
    (folder / "status").write_text(status)
    if pss_kib is not None:
        (folder / "smaps_rollup").write_text(f"Rss:  {rss_kib} kB\nPss:  {pss_kib} kB\n")


def test_proc_tree_is_walked_from_the_root(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "self").mkdir()  # not a process folder: ignored
    _fake_process(proc, 10, 1, "driver", 1024, 512)
    _fake_process(proc, 11, 10, "ray::IDLE (a) b)", 2048, 1024)  # parentheses in the name
    _fake_process(proc, 12, 11, "worker", 4096, 2048)  # a grandchild
    _fake_process(proc, 13, 10, "zombie", None, None)  # no memory lines
    _fake_process(proc, 20, 1, "stranger", 8192, 8192)  # not in the tree

    tree = process_tree_memory(10, use_psutil=False, proc=proc)
    branch = process_tree_memory(11, use_psutil=False, proc=proc)

    assert tree.processes == 4
    assert tree.rss_mb == (1024 + 2048 + 4096) / 1024
    assert tree.pss_mb == (512 + 1024 + 2048) / 1024
    assert (branch.processes, branch.rss_mb, branch.pss_mb) == (2, 6.0, 3.0)
    no_pss = process_tree_memory(13, use_psutil=False, proc=proc)
    assert (no_pss.rss_mb, no_pss.pss_mb) == (0.0, None)


def test_without_psutil_the_tree_comes_from_proc(
    child: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "_psutil", lambda: None)

    tree = process_tree_memory()

    assert tree.processes >= 2
    assert tree.rss_mb >= CHILD_MB
