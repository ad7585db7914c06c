"""Memory of a whole process tree: this process and every descendant.

A sweep's memory is the driver's plus its workers' (a local Ray cluster's
processes are descendants of the driver). :class:`ProcessTreeMemory` samples
the tree in a background thread and keeps two peaks:

- ``peak_rss_mb``: the summed resident set sizes. Pages shared between
  processes (libraries, Ray's object store) count once per process, so this
  is an upper bound of what the tree holds.
- ``peak_pss_mb``: the summed proportional set sizes (Linux
  ``/proc/<pid>/smaps_rollup``): a shared page is split between the processes
  mapping it, so the sum is the memory the tree really holds. ``None`` where
  the platform does not report it. Reading it costs a few milliseconds per
  process, so it is sampled less often.

Processes are listed with ``psutil`` when it is installed, else from ``/proc``.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from tradepulse.executor import peak_rss_mb

__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEFAULT_PSS_INTERVAL_S",
    "ProcessTreeMemory",
    "TreeMemory",
    "process_tree_memory",
    "process_tree_rss_mb",
]

#: Seconds between two resident-size samples of the tree.
DEFAULT_INTERVAL_S: Final = 0.2
#: Seconds between two proportional-size samples (dearer to read).
DEFAULT_PSS_INTERVAL_S: Final = 2.0
_PROC: Final = Path("/proc")


@dataclass(frozen=True, slots=True)
class TreeMemory:
    """One sample of a process tree: summed RSS and PSS (MiB; PSS ``None`` if unknown)."""

    rss_mb: float
    pss_mb: float | None
    processes: int


def _psutil() -> Any:
    try:
        # Optional and without type stubs: typed as Any on purpose.
        return importlib.import_module("psutil")
    except ImportError:
        return None


def _proc_children(proc: Path) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The parent pid follows the command name, which may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree_pids(root: int, *, use_psutil: bool, proc: Path) -> list[int]:
    psutil = _psutil() if use_psutil else None
    if psutil is not None:
        try:
            top = psutil.Process(root)
            return [root, *(child.pid for child in top.children(recursive=True))]
        except psutil.Error:
            return []
    if not (proc / str(root)).is_dir():
        return []
    children = _proc_children(proc)
    pids: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        pending.extend(children.get(pid, ()))
    return pids


def _field_kib(path: Path, name: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return None


def _rss_kib(pid: int, proc: Path) -> int:
    found = _field_kib(proc / str(pid) / "status", "VmRSS:")
    if found is not None:
        return found
    psutil = _psutil()
    if psutil is None:
        return 0  # a zombie has no resident memory
    try:
        return int(psutil.Process(pid).memory_info().rss) // 1024
    except psutil.Error:  # exited meanwhile
        return 0


def process_tree_memory(
    pid: int | None = None,
    *,
    proportional: bool = True,
    use_psutil: bool = True,
    proc: Path = _PROC,
) -> TreeMemory:
    """Return the summed memory of process ``pid`` (default: this one) and its descendants.

    ``proportional=False`` skips the (dearer) PSS; ``use_psutil=False`` lists
    processes from ``proc`` even when psutil is installed. Without a way to
    list processes, this process's own peak RSS is returned.
    """
    root = os.getpid() if pid is None else pid
    pids = _tree_pids(root, use_psutil=use_psutil, proc=proc)
    if not pids:
        return TreeMemory(rss_mb=peak_rss_mb(), pss_mb=None, processes=1)
    rss = sum(_rss_kib(item, proc) for item in pids)
    pss: int | None = None
    if proportional:
        values = [_field_kib(proc / str(item) / "smaps_rollup", "Pss:") for item in pids]
        # PSS is known only if the tree's root reports it (Linux >= 4.14).
        if values[0] is not None:
            pss = sum(value or 0 for value in values)
    return TreeMemory(
        rss_mb=rss / 1024.0,
        pss_mb=None if pss is None else pss / 1024.0,
        processes=len(pids),
    )


def process_tree_rss_mb(pid: int | None = None) -> float:
    """Return the summed resident set size of process ``pid`` and its descendants, MiB."""
    return process_tree_memory(pid, proportional=False).rss_mb


class ProcessTreeMemory:
    """Sample this process tree's memory in a thread and keep the peaks (a context manager).

    ``peak_rss_mb`` is the largest summed resident size seen (never less than
    this process's own peak since the start); ``peak_pss_mb`` the largest
    summed proportional size (``None`` where unknown). RSS is sampled every
    ``interval_s`` seconds, PSS every ``pss_interval_s``.
    """

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        pss_interval_s: float = DEFAULT_PSS_INTERVAL_S,
        sample: Callable[[bool], TreeMemory] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.pss_interval_s = pss_interval_s
        self._sample = sample or (
            lambda proportional: process_tree_memory(proportional=proportional)
        )
        self._peak_rss = 0.0
        self._peak_pss: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"ProcessTreeMemory(interval_s={self.interval_s!r}, "
            f"pss_interval_s={self.pss_interval_s!r}, peak_rss_mb={self.peak_rss_mb:.1f})"
        )

    @property
    def peak_rss_mb(self) -> float:
        """Return the peak summed resident size seen so far, MiB."""
        return max(self._peak_rss, peak_rss_mb())

    @property
    def peak_pss_mb(self) -> float | None:
        """Return the peak summed proportional size seen so far, MiB (``None``: unknown)."""
        return self._peak_pss

    def sample(self, *, proportional: bool = True) -> TreeMemory:
        """Take one sample now, update the peaks and return it."""
        value = self._sample(proportional)
        self._peak_rss = max(self._peak_rss, value.rss_mb)
        if value.pss_mb is not None:
            self._peak_pss = max(self._peak_pss or 0.0, value.pss_mb)
        return value

    def _run(self) -> None:
        every = max(1, round(self.pss_interval_s / self.interval_s))
        count = 0
        while not self._stop.wait(self.interval_s):
            count += 1
            self.sample(proportional=count % every == 0)

    def __enter__(self) -> ProcessTreeMemory:
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()
