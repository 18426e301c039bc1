"""Per-organization vector index files, written by ingest and memory-mapped read-only by every process.

Postgres stays the source of truth (``chunks.embedding``); this is a derived copy, so a call does not
load an organization's vectors from the database: the HNSW graph and its vectors (usearch) are one
file that each process maps with ``Index.restore(view=True)``, and the operating system shares its
pages between processes. Opening one takes milliseconds whatever its size.

Layout under ``root/<organization id>/``:

* ``v<version>.<token>/index.usearch``: the HNSW graph over the org's child vectors (inner product
  on unit vectors, as the exact search scores them), keys are row numbers of ``ids.npy``;
* ``v<version>.<token>/ids.npy``: the chunk id of each key (``b""`` for a chunk removed since the
  file was first built: an incremental refresh removes it from the graph and keeps the row);
* ``current.json``: which folder is current, with its version, model, dimension and chunk count.

Every write makes a folder of its own (the token), and writers of one org take turns (``.lock``), so
a reader never sees the graph of one write with the id table of another; a reader checks that the
two agree in size before it uses them.

``version`` is ``knowledge_stats.version`` when the snapshot was read. Every committed change to an
org's chunks bumps it, and the store reads it on every query anyway, so the stale check costs nothing:
an index whose version is not the database's (a write since, or no file on this host) is not used,
and the store falls back to its exact search.

Small organizations (under ``exact_below`` chunks) are searched exactly over the mapped vectors
(brute force in usearch), so only large ones are approximate; ``expansion_search`` is raised to the
number of results asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("callwise.knowledge.ann")

POINTER = "current.json"
INDEX_FILE = "index.usearch"
IDS_FILE = "ids.npy"
ID_DTYPE = "S36"  # a UUID's text


def _usearch_index() -> Any:
    """usearch's ``Index``, loaded after onnxruntime: in usearch 2.26.6 with onnxruntime 1.32 (Silero VAD, the turn
    detector), importing onnxruntime after usearch kills the process with SIGSEGV, the other order works."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    from usearch.index import Index

    return Index


@dataclass(frozen=True)
class AnnParams:
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    exact_below: int = 20_000  # brute force over the mapped vectors under this many chunks
    rebuild_share: float = 0.3  # a refresh rebuilds when removed rows would pass this share of the file


@dataclass(frozen=True)
class Snapshot:
    """An org's child vectors as of one ``knowledge_stats.version`` (read in one transaction)."""

    version: int
    model: str
    ids: list[str]
    matrix: np.ndarray  # float32, (len(ids), dim)


class AnnView:
    """One organization's index file, memory-mapped read-only."""

    def __init__(self, version: int, dim: int, index: object, ids: np.ndarray, params: AnnParams) -> None:
        self.version = version
        self.dim = dim
        self.index = index
        self.ids = ids
        self.live = int(np.count_nonzero(ids != b""))
        self.exact = self.live < params.exact_below
        self.expansion_search = params.expansion_search

    def search(self, vector: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """Top ``limit`` chunk ids by inner product (cosine on unit vectors), best first."""
        if self.live == 0 or limit <= 0:
            return []
        q = np.ascontiguousarray(vector, dtype=np.float32)
        index = self.index
        index.expansion_search = max(self.expansion_search, limit)  # type: ignore[attr-defined]
        matches = index.search(q, min(limit, self.live), exact=self.exact)  # type: ignore[attr-defined]
        out: list[tuple[str, float]] = []
        for key, dist in zip(matches.keys.tolist(), matches.distances.tolist(), strict=True):
            cid = self.ids[int(key)]
            if cid:
                out.append((cid.decode(), 1.0 - float(dist)))
        return out


class AnnIndexes:
    """The index files of every organization under ``root`` (one instance per process)."""

    def __init__(self, root: Path, params: AnnParams | None = None) -> None:
        self.root = Path(root)
        self.params = params or AnnParams()
        self._views: dict[str, AnnView] = {}
        self._lock = threading.Lock()

    def _dir(self, organization_id: str) -> Path:
        return self.root / organization_id

    def pointer(self, organization_id: str) -> dict[str, object] | None:
        try:
            data = json.loads((self._dir(organization_id) / POINTER).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ reading
    def open(self, organization_id: str, version: int, dim: int) -> AnnView | None:
        """The org's index if it was built from ``version`` with ``dim`` dimensions, else None (stale or
        missing: the caller searches exactly). Mapped once per process and version."""
        view = self._views.get(organization_id)
        if view is not None and view.version == version:
            return view
        ptr = self.pointer(organization_id)
        if ptr is None or ptr.get("version") != version or ptr.get("dim") != dim or not ptr.get("dir"):
            return None
        with self._lock:
            view = self._views.get(organization_id)
            if view is not None and view.version == version:
                return view
            try:
                view = self._map(self._dir(organization_id) / str(ptr["dir"]), version, dim)
            except (OSError, ValueError, RuntimeError) as exc:  # removed under us, or unreadable: exact search
                log.warning("vector index of %s v%s unusable (%s); searching exactly", organization_id, version, exc)
                return None
            self._views[organization_id] = view
            return view

    def _map(self, folder: Path, version: int, dim: int) -> AnnView:
        index = _usearch_index().restore(str(folder / INDEX_FILE), view=True)
        if index is None or index.ndim != dim:
            raise ValueError(f"{folder / INDEX_FILE} is not a {dim}-dimension index")
        ids = np.load(folder / IDS_FILE, mmap_mode="r")
        view = AnnView(version, dim, index, ids, self.params)
        if len(index) != view.live:
            raise ValueError(f"{folder}: the graph holds {len(index)} vectors, the id table {view.live}")
        return view

    # ------------------------------------------------------------------ writing
    def write(self, organization_id: str, snap: Snapshot) -> dict[str, object]:
        """Make the index of ``snap`` current: an incremental refresh of the current file when it has the
        same model and dimension and not too many removed rows, else a full build. Blocking (seconds to
        minutes at 100k chunks): run it in a thread. Writers of one org take turns; one that finds the
        snapshot's version (or a later one) current already does nothing. Returns what was done."""
        started = time.perf_counter()
        org_dir = self._dir(organization_id)
        org_dir.mkdir(parents=True, exist_ok=True)
        dim = int(snap.matrix.shape[1]) if snap.matrix.ndim == 2 and len(snap.ids) else 0
        with open(org_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ptr = self.pointer(organization_id)
            if ptr is not None and int(ptr.get("version") or 0) >= snap.version and ptr.get("dir"):  # type: ignore[call-overload]
                return {"action": "current", "version": ptr.get("version")}
            name = f"v{snap.version}.{uuid.uuid4().hex[:12]}"
            tmp = org_dir / f".{name}.tmp"
            tmp.mkdir()
            try:
                action = self._refresh(org_dir, ptr, snap, dim, tmp) or self._build(snap, dim, tmp)
                os.replace(tmp, org_dir / name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._publish(org_dir, {"version": snap.version, "dir": name, "model": snap.model, "dim": dim,
                                    "count": len(snap.ids), "built_at": time.time()})
        seconds = round(time.perf_counter() - started, 3)
        log.info("vector index of %s: %s to v%s (%d chunks) in %.1f s", organization_id, action, snap.version,
                 len(snap.ids), seconds)
        return {"action": action, "version": snap.version, "chunks": len(snap.ids), "seconds": seconds}

    def _new_index(self, dim: int) -> object:
        p = self.params
        return _usearch_index()(ndim=max(dim, 1), metric="ip", dtype="f32", connectivity=p.connectivity,
                     expansion_add=p.expansion_add, expansion_search=p.expansion_search)

    def _build(self, snap: Snapshot, dim: int, out: Path) -> str:
        index = self._new_index(dim)
        if snap.ids:
            index.add(np.arange(len(snap.ids), dtype=np.uint64),  # type: ignore[attr-defined]
                      np.ascontiguousarray(snap.matrix, dtype=np.float32), threads=os.cpu_count() or 1)
        index.save(str(out / INDEX_FILE))  # type: ignore[attr-defined]
        np.save(out / IDS_FILE, np.array(snap.ids, dtype=ID_DTYPE))
        return "built"

    def _refresh(self, org_dir: Path, ptr: dict[str, object] | None, snap: Snapshot, dim: int,
                 out: Path) -> str | None:
        """Apply the difference to the current file (chunks removed and added since); None when a full
        build is due. A chunk whose vector changed in place keeps its id, so a new model (re-embed)
        always rebuilds."""
        if ptr is None or ptr.get("model") != snap.model or ptr.get("dim") != dim or not dim or not ptr.get("dir"):
            return None
        prev = org_dir / str(ptr["dir"])
        try:
            index = _usearch_index().restore(str(prev / INDEX_FILE))
            old = np.load(prev / IDS_FILE)
        except (OSError, ValueError, RuntimeError):
            return None
        if index is None or index.ndim != dim:
            return None
        wanted = {cid: i for i, cid in enumerate(snap.ids)}
        keep = {cid.decode(): k for k, cid in enumerate(old.tolist()) if cid}
        removed = [k for cid, k in keep.items() if cid not in wanted]
        added = [i for cid, i in wanted.items() if cid not in keep]
        dead = int(np.count_nonzero(old == b"")) + len(removed)
        if dead > self.params.rebuild_share * (len(old) + len(added)):
            return None
        if removed:
            index.remove(np.array(removed, dtype=np.uint64))
            old[removed] = b""
        if added:
            keys = np.arange(len(old), len(old) + len(added), dtype=np.uint64)
            index.add(keys, np.ascontiguousarray(snap.matrix[added], dtype=np.float32),
                      threads=os.cpu_count() or 1)
            old = np.concatenate([old, np.array([snap.ids[i] for i in added], dtype=ID_DTYPE)])
        index.save(str(out / INDEX_FILE))
        np.save(out / IDS_FILE, old)
        return f"refreshed (+{len(added)} -{len(removed)})"

    def _publish(self, org_dir: Path, pointer: dict[str, object]) -> None:
        """Point ``current.json`` at the new folder (under the writers' lock), then drop the others (a
        process that still maps one keeps its pages until it lets go; one about to open it searches exactly)."""
        tmp = org_dir / f".{POINTER}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(pointer))
        os.replace(tmp, org_dir / POINTER)
        for old in org_dir.glob("v*"):
            if old.is_dir() and old.name != pointer["dir"]:
                with contextlib.suppress(OSError):
                    shutil.rmtree(old)
