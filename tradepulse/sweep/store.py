"""A sweep's output folder: a manifest and one Parquet part per batch, written atomically.

Layout of ``DIR``::

    manifest.json          the sweep's definition, batch plan, status and cost totals
    part-000000.parquet    the rows of batch 0 (one per combination), with the
    part-000001.parquet    task's cost in key-value metadata (key `METADATA_KEY`)
    ...

Each part is written to a hidden temporary file, flushed to disk and renamed
into place (``os.replace``), so a part is either complete or absent whatever
interrupts the sweep (Ctrl-C, ``kill -9``, a lost machine). Batches are
numbered deterministically from the definition, so resuming runs exactly the
batches whose part is missing and ends with the rows of an uninterrupted run.
The manifest's definition (data digest, strategy, grid, frictions) lets a
resumed sweep refuse a folder that holds a different one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import polars as pl

from tradepulse.errors import ConfigError
from tradepulse.executor import TaskStats

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "METADATA_KEY",
    "PART_GLOB",
    "SweepCost",
    "SweepStore",
    "fingerprint",
    "part_name",
]

#: Format tag of a sweep folder (manifest and part metadata).
FORMAT: Final = "tradepulse-sweep/1"
#: File name of the manifest in a sweep folder.
MANIFEST_NAME: Final = "manifest.json"
#: Glob matching the result parts of a sweep folder.
PART_GLOB: Final = "part-*.parquet"
#: Parquet key-value metadata key holding a part's JSON description.
METADATA_KEY: Final = "tradepulse.sweep"
_TEMPORARY_SUFFIX: Final = ".tmp"


def part_name(batch: int) -> str:
    """Return the file name of batch ``batch``'s part."""
    return f"part-{batch:06d}.parquet"


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=True)


def fingerprint(definition: Mapping[str, Any]) -> str:
    """Return the sha256 (hex) of ``definition`` as canonical JSON."""
    return hashlib.sha256(_canonical(definition).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SweepCost:
    """What a sweep's tasks cost, totalled over its batches.

    ``tasks`` counted; ``cpu_s`` and ``wall_s`` summed over the tasks (seconds);
    ``max_peak_rss_mb`` the largest worker peak resident size a task reported
    (MiB); ``workers`` the distinct worker processes and ``nodes`` the distinct
    hosts; tagged with ``strategy`` and ``team`` (``None``: untagged).
    """

    strategy: str
    team: str | None
    tasks: int
    cpu_s: float
    wall_s: float
    max_peak_rss_mb: float
    workers: int
    nodes: int

    def to_dict(self) -> dict[str, Any]:
        """Return the totals as a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def total(
        cls, stats: Sequence[Mapping[str, Any]], *, strategy: str, team: str | None
    ) -> SweepCost:
        """Return the totals of per-task ``stats`` (`TaskStats` fields by name)."""
        return cls(
            strategy=strategy,
            team=team,
            tasks=len(stats),
            cpu_s=sum(float(item["cpu_s"]) for item in stats),
            wall_s=sum(float(item["wall_s"]) for item in stats),
            max_peak_rss_mb=max((float(item["peak_rss_mb"]) for item in stats), default=0.0),
            workers=len({(item["node"], item["pid"]) for item in stats}),
            nodes=len({item["node"] for item in stats}),
        )


def _fsync_directory(path: Path) -> None:
    # Make a rename durable; some platforms cannot open a folder (nothing to do there).
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file, fsync, then rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}{_TEMPORARY_SUFFIX}")
    try:
        with temporary.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep manifest: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a TradePulse sweep manifest (format {FORMAT!r})")
    return document


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        key for key in keys if _canonical({"v": old.get(key)}) != _canonical({"v": new.get(key)})
    ]


class SweepStore:
    """The output folder of one sweep (see the module docstring for the layout).

    Opening it checks the folder: without ``resume`` it must be empty or
    absent; with ``resume`` a manifest there must hold the same
    ``definition``. :attr:`plan` is the stored batch plan when resuming (the
    batches must not change), else ``None`` until :meth:`start` records one.
    """

    def __init__(self, path: str | Path, *, definition: Mapping[str, Any], resume: bool) -> None:
        self.path = Path(path)
        self.definition = dict(definition)
        self.fingerprint = fingerprint(self.definition)
        self.plan: dict[str, Any] | None = None
        self._manifest: dict[str, Any] = {}
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()
        entries = sorted(entry.name for entry in self.path.iterdir())
        manifest = self.path / MANIFEST_NAME
        if not resume:
            if entries:
                raise ConfigError(
                    f"{self.path} is not empty ({len(entries)} entries); resume the sweep in it "
                    "(--resume, resume=True) or write to a new folder"
                )
            return
        if not manifest.exists():
            if entries:
                raise ConfigError(
                    f"{self.path} holds no {MANIFEST_NAME}: not a sweep folder, cannot resume"
                )
            return
        stored = _read_json(manifest)
        old = stored.get("definition")
        if not isinstance(old, dict) or fingerprint(old) != self.fingerprint:
            changed = _differences(old if isinstance(old, dict) else {}, self.definition)
            raise ConfigError(
                f"{self.path} holds a different sweep (differs in: {', '.join(changed)}); "
                "resume it with the same data, strategy, grid and frictions, or write to a "
                "new folder"
            )
        plan = stored.get("plan")
        if not isinstance(plan, dict):
            raise ConfigError(f"{manifest}: no batch plan; cannot resume")
        self._manifest = stored
        self.plan = plan

    def __repr__(self) -> str:
        return f"SweepStore({str(self.path)!r})"

    def _remove_temporaries(self) -> None:
        # Left by an interrupted write: never part of the results.
        for entry in self.path.glob(f".*{_TEMPORARY_SUFFIX}"):
            entry.unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        text = json.dumps(self._manifest, indent=2, sort_keys=True, allow_nan=True) + "\n"
        _write_atomically(self.path / MANIFEST_NAME, lambda handle: handle.write(text.encode()))

    def start(self, plan: Mapping[str, Any]) -> None:
        """Record the batch plan of a new sweep in the manifest (before any part).

        Raises:
            ConfigError: a plan is already recorded and differs from ``plan``.
        """
        if self.plan is not None:
            if _canonical(self.plan) != _canonical(plan):
                changed = _differences(self.plan, plan)
                raise ConfigError(
                    f"{self.path}: the batch plan differs from the stored one (in: "
                    f"{', '.join(changed)}); resume with the same batch size"
                )
            return
        self.plan = dict(plan)
        self._manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "definition": self.definition,
            "plan": self.plan,
            "status": "running",
        }
        self._write_manifest()

    def completed(self, sizes: list[int]) -> dict[int, dict[str, Any]]:
        """Return the batches whose part on disk is complete, with each part's description.

        ``sizes[b]`` is the number of rows of batch b. A part that cannot be
        read, belongs to another sweep or has the wrong number of rows is
        deleted, so its batch runs again.
        """
        done: dict[int, dict[str, Any]] = {}
        for batch, rows in enumerate(sizes):
            path = self.path / part_name(batch)
            if not path.exists():
                continue
            description = self._part_description(path)
            if (
                description is not None
                and description.get("fingerprint") == self.fingerprint
                and description.get("batch") == batch
                and description.get("rows") == rows
                and pl.scan_parquet(path).select(pl.len()).collect().item() == rows
            ):
                done[batch] = description
            else:
                path.unlink()
        return done

    @staticmethod
    def _part_description(path: Path) -> dict[str, Any] | None:
        try:
            metadata = pl.read_parquet_metadata(path)
            description = json.loads(metadata[METADATA_KEY])
        except Exception:  # any unreadable part is redone, never trusted
            return None
        return description if isinstance(description, dict) else None

    def write_part(
        self, batch: int, rows: pl.DataFrame, stats: TaskStats, *, strategy: str, team: str | None
    ) -> dict[str, Any]:
        """Write batch ``batch``'s ``rows`` with the task's cost as the part's metadata.

        Returns the part's description (what its metadata holds).
        """
        description = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "batch": batch,
            "rows": rows.height,
            "strategy": strategy,
            "team": team,
            "cpu_s": stats.cpu_s,
            "wall_s": stats.wall_s,
            "peak_rss_mb": stats.peak_rss_mb,
            "pid": stats.pid,
            "node": stats.node,
        }
        metadata = {METADATA_KEY: json.dumps(description, sort_keys=True)}
        _write_atomically(
            self.path / part_name(batch),
            lambda handle: rows.write_parquet(handle, metadata=metadata),
        )
        return description

    def finish(self, totals: SweepCost, summary: Mapping[str, Any]) -> None:
        """Mark the sweep complete in the manifest with its cost ``totals`` and ``summary``."""
        self._manifest["status"] = "complete"
        self._manifest["totals"] = totals.to_dict()
        self._manifest["summary"] = dict(summary)
        self._write_manifest()

    def scan(self) -> pl.LazyFrame:
        """Return every result row on disk as a lazy frame."""
        return pl.scan_parquet(self.path / PART_GLOB)
