"""The fingerprint index on a Redis Cluster: both ports of ``index/base.py`` (``IndexBackend``).

Keys (``N`` = the URL's prefix + ":" + this store's namespace from its catalog; ``slot`` = the
track's 32-bit number, allocated from a counter in the cluster, never reused; the names are
built in ``index/redis_keys.py``):
  {N:bbb}:h:<hash>  the postings of one hash, packed: per posting 8 bytes, uint32 slot + uint32
                   reference time in frames (little-endian); a write APPENDs its records. ``bbb``
                   is the hash's low 10 bits: the hash tag puts the keys of one of 1,024 buckets
                   in one cluster slot, so a lookup reads a bucket's keys with one MGET (a query's
                   ~7,000 hashes: ~1,000 commands, not 7,000)
  N:p:<slot>       the track's peaks for verification: uint32 (frame << 10 | bin) each
                   (``index/redis_peaks.py``, which also keeps recently read ones in RAM)
  N:t:<slot>       the track's distinct hashes, uint32 each: the keys compaction and cleanup must
                   rewrite to drop the track (stored rather than recomputed from the peaks, which
                   would tie the index to the fingerprint code: ≤ 4 bytes per posting)
  N:part:<name>    one write's tracks: (uint32 slot, int64 track id) each, stored before anything
                   else of the write, so a writer that dies half-way leaves a record of what to delete
  N:parts          the set of every part name not yet deleted
  N:slots          the slot counter (INCRBY)

Visibility (the ports' write → publish → refresh): ``write`` stores everything above, yet a
lookup only returns postings of tracks that the store's catalog lists as published and not
removed (``index/redis_manifest.py``); each process keeps that live set in RAM and refreshes it
incrementally by generation. ``abort`` and ``cleanup`` delete unpublished parts; ``compact`` deletes
removed tracks' data. The per-hash cap counts the live postings of a hash only (as ``MemoryIndex``).

Lookups send one MGET per bucket, grouped per master node and sent to all of them at once
(``index/redis_nodes.py``), every command encoded with NumPy (``index/redis_resp.py``); a write
sends one APPEND script per bucket the same way. An unreachable cluster is a ``StoreError``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from redis import RedisCluster
from redis.cluster import ClusterNode
from redis.exceptions import RedisClusterException, RedisError

from soundmark.errors import StoreError
from soundmark.index.base import (
    Hits,
    IndexDatabase,
    IndexStats,
    TrackPostings,
    Written,
    WrittenPart,
    add_in_own_transaction,
    check_batch,
)
from soundmark.index.redis_keys import BUCKETS, LAYOUT, KeyNames, buckets_of
from soundmark.index.redis_manifest import RedisManifest, TrackRow
from soundmark.index.redis_nodes import Command, NodeRouter
from soundmark.index.redis_peaks import MAX_PEAK_FRAME, PEAK_BIN_BITS, PeakCache, decode_peaks, encode_peaks
from soundmark.index.redis_resp import command_set, from_buffer
from soundmark.index.redis_url import parse_redis_url

RECORD = np.dtype([("slot", "<u4"), ("time", "<u4")])  # one posting in a hash's value
PURGE_TRACKS = 256  # tracks whose postings one purge round rewrites (bounds its memory)

# For every key KEYS[k]: deletes the records whose slot (their first 4 bytes) is in ARGV[k] (4-byte
# slot codes), atomically; returns how many went.
FILTER_SCRIPT = """
local total = 0
for k = 1, #KEYS do
  local v = redis.call('GET', KEYS[k])
  if v then
    local drop, d = {}, ARGV[k]
    for i = 1, #d, 4 do drop[string.sub(d, i, i + 3)] = true end
    local out, n = {}, 0
    for i = 1, #v, 8 do
      if drop[string.sub(v, i, i + 3)] then n = n + 1 else out[#out + 1] = string.sub(v, i, i + 7) end
    end
    if n > 0 then
      if #out == 0 then redis.call('DEL', KEYS[k]) else redis.call('SET', KEYS[k], table.concat(out)) end
      total = total + n
    end
  end
end
return total
"""
SCRIPT_KEYS = 2_000  # keys one script call touches at most


@dataclass(frozen=True)
class _Staged:
    rows: tuple[TrackRow, ...]


class RedisClusterIndex:
    """The index of one store on a Redis Cluster; its bookkeeping lives in the store's catalog."""

    def __init__(self, url: str, db: IndexDatabase):
        try:
            location = parse_redis_url(url)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
        self.url = location.url
        self._db = db
        self._manifest = RedisManifest(db, LAYOUT)
        if self._manifest.layout != LAYOUT:
            raise StoreError(
                f"this store's index on {self.url} was written by an older soundmark (key layout"
                f" {self._manifest.layout}, this one reads {LAYOUT}): add the catalog to a new store"
            )
        self.namespace = f"{location.prefix}:{self._manifest.namespace}"
        self._ns = self.namespace.encode()
        self._keys = KeyNames(self._ns)
        try:
            self._client = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in location.nodes],
                socket_connect_timeout=5,
                socket_timeout=30,
            )
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreError(f"cannot reach the Redis cluster at {self.url}: {exc}") from exc
        self._router = NodeRouter(self._client)
        self._peaks = PeakCache()
        self._staged: dict[str, _Staged] = {}
        # The live set, two orders: by slot (lookups) and by track id (peaks).
        self._slots = np.zeros(0, dtype=np.int64)
        self._slot_tids = np.zeros(0, dtype=np.int64)
        self._tids = np.zeros(0, dtype=np.int64)
        self._tid_slots = np.zeros(0, dtype=np.int64)
        self._live: dict[int, TrackRow] = {}
        self._postings = 0  # of the live tracks
        self._bytes = 0
        self._gen = -1
        self._version = -1

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (RedisError, RedisClusterException) as exc:
            raise StoreError(f"the Redis cluster at {self.url} failed while {doing}: {exc}") from exc

    # --- keys ---------------------------------------------------------------------------------
    def _key(self, kind: bytes, name: int | str) -> bytes:
        return self._keys.key(kind, name)

    def hash_keys(self, hashes: np.ndarray) -> list[bytes]:
        """The keys holding the postings of ``hashes`` (uint32)."""
        return self._keys.hash_keys(hashes)

    # --- reading ------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Apply the publications and removals committed since the last call."""
        version = self._manifest.data_version()
        if version == self._version and not force:
            return
        gen, rows = self._manifest.changed_since(self._gen)
        self._version = version
        if gen == self._gen and not rows:
            return
        for r in rows:
            self._staged.pop(r.part, None)  # published: no longer this writer's to abort
            if r.removed:
                self._live.pop(r.track_id, None)
            else:
                self._live[r.track_id] = r
        self._gen = gen
        if rows:
            live = list(self._live.values())
            self._postings = sum(r.postings for r in live)
            self._bytes = sum(r.bytes for r in live)
            slots = np.array([r.slot for r in live], dtype=np.int64)
            tids = np.array([r.track_id for r in live], dtype=np.int64)
            by_slot, by_tid = np.argsort(slots), np.argsort(tids)
            self._slots, self._slot_tids = slots[by_slot], tids[by_slot]
            self._tids, self._tid_slots = tids[by_tid], slots[by_tid]

    def postings(self) -> int:
        """Live postings (a removed track stops counting at once)."""
        return self._postings

    def stats(self) -> IndexStats:
        return IndexStats(self._postings, 0, self._bytes)

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int) -> Hits:
        """Postings of ``hashes`` (unique uint32) of live tracks; hashes with more live postings
        than the cap are skipped."""
        q = np.asarray(hashes, dtype=np.uint32)
        if len(q) == 0 or len(self._slots) == 0:
            return Hits.empty()
        with self._errors("looking hashes up"):
            order, values = self._mget(q)
        lens = np.fromiter(map(len, values), dtype=np.int64, count=len(q)) // RECORD.itemsize
        if not lens.any():
            return Hits.empty()
        rec = np.frombuffer(b"".join(values), dtype=RECORD)
        pos = np.repeat(order, lens)
        slots = rec["slot"].astype(np.int64)
        at = np.minimum(np.searchsorted(self._slots, slots), len(self._slots) - 1)
        live = self._slots[at] == slots
        pos, at, times = pos[live], at[live], rec["time"][live].astype(np.int64)
        allowed = np.bincount(pos, minlength=len(q)) <= max_postings_per_hash
        keep = allowed[pos]
        return Hits(pos[keep], self._slot_tids[at[keep]], times[keep])

    def _mget(self, q: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
        """The values of the keys of hashes ``q`` (b"" for none) in the order they were read,
        and that order (indices into ``q``): one MGET per bucket, every node's MGETs in one
        pipeline, every node at once."""
        buckets = buckets_of(q)
        nodes = self._router.nodes_of(self._keys.bucket_slots[buckets])
        order = np.lexsort((buckets, nodes))  # by node, then bucket: each node's commands in one run
        sorted_q, sorted_b = q[order], buckets[order]
        bounds = np.flatnonzero(np.r_[True, sorted_b[1:] != sorted_b[:-1], True])
        keys = self._keys.hash_bulks(sorted_q)
        commands = command_set([b"MGET"], [keys.groups(bounds)], np.diff(bounds))

        def resend(g: int) -> tuple[object, ...]:
            return ("MGET", *self._keys.hash_keys(sorted_q[bounds[g] : bounds[g + 1]]))

        slots = self._keys.bucket_slots[sorted_b[bounds[:-1]]]
        replies = self._router.run_resp(slots, commands, resend, idempotent=True)
        return order, [v or b"" for v in itertools.chain.from_iterable(replies)]

    def track_peaks(self, track_id: int) -> np.ndarray:
        """Stored peaks (int32 (n, 2): frame, bin) of a live track; (0, 2) if unknown or removed."""
        row = self._live.get(int(track_id))
        if row is None:
            return np.zeros((0, 2), dtype=np.int32)
        cached = self._peaks.get(row.slot)
        if cached is not None:
            return cached
        with self._errors("reading a track's peaks"):
            data = self._router.get([self._key(b"p", row.slot)])[0]
        peaks = decode_peaks(_bytes(data))
        self._peaks.put(row.slot, peaks)
        return peaks

    # --- writing ------------------------------------------------------------------------------
    def write(self, batch: Sequence[TrackPostings]) -> Written:
        """Store ``batch`` in the cluster, invisible until published; outside any transaction."""
        check_batch(batch, MAX_PEAK_FRAME, 1 << PEAK_BIN_BITS)
        ids = [int(p.track_id) for p in batch]
        used = self._manifest.known(ids)
        if used:
            raise ValueError(f"track ids already used: {sorted(used)}")
        name = f"rc-{uuid.uuid4().hex[:16]}"
        with self._errors("allocating track slots"):
            last = int(self._client.incrby(self._ns + b":slots", len(batch)))
        first = last - len(batch) + 1
        if last >= 1 << 32:
            raise StoreError(f"the index at {self.url} has used all 2**32 track slots")
        slots = list(range(first, last + 1))
        record = np.zeros(len(batch), dtype=[("slot", "<u4"), ("track", "<i8")])
        record["slot"], record["track"] = slots, ids
        try:
            with self._errors("storing a batch"):
                # 1. what to delete if we die: before anything else of the write
                self._client.set(self._key(b"part", name), record.tobytes())
                self._client.sadd(self._ns + b":parts", name)
                # 2. per track: peaks and distinct hashes
                rows, commands = [], []
                for slot, p in zip(slots, batch, strict=True):
                    packed = encode_peaks(p.peaks)
                    distinct = np.unique(np.asarray(p.hashes, dtype=np.uint32)).astype("<u4").tobytes()
                    commands += [_set(self._key(b"p", slot), packed), _set(self._key(b"t", slot), distinct)]
                    size = len(p.hashes) * RECORD.itemsize + len(packed) + len(distinct)
                    rows.append(TrackRow(int(p.track_id), slot, name, len(p.hashes), size, False))
                self._router.run(commands, idempotent=True)
                # 3. the postings: per bucket one script APPENDing to each of its keys the batch touches
                self._appends(batch, slots)
        except BaseException:
            self._purge_part(name, slots)
            raise
        self._staged[name] = _Staged(tuple(rows))
        part = WrittenPart(name, len(batch), sum(r.postings for r in rows), sum(r.bytes for r in rows))
        return Written(tuple(ids), (part,))

    def _appends(self, batch: Sequence[TrackPostings], slots: Sequence[int]) -> None:
        """APPEND the batch's postings to their hash keys, a command per distinct hash, every
        node's commands in one pipeline. Encoded as one fixed-width matrix per number of
        postings a hash has in the batch (mostly one), no Python object per key."""
        hashes = np.concatenate([np.asarray(p.hashes, dtype=np.uint32) for p in batch])
        if len(hashes) == 0:
            return
        rec = np.zeros(len(hashes), dtype=RECORD)
        rec["slot"] = np.concatenate(
            [np.full(len(p.hashes), s, dtype=np.uint32) for s, p in zip(slots, batch, strict=True)]
        )
        rec["time"] = np.concatenate([np.asarray(p.times, dtype=np.uint32) for p in batch])
        order = np.argsort(hashes, kind="stable")
        hashes, rec = hashes[order], rec[order]
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        counts = np.diff(np.r_[starts, len(hashes)])
        distinct = hashes[starts]
        key_slots = self._keys.bucket_slots[buckets_of(distinct)]
        node = self._router.nodes_of(key_slots)
        blocks, picks, widths = [], [], []
        for k in np.unique(counts).tolist():
            sel = np.flatnonzero(counts == k)
            sel = sel[np.argsort(node[sel], kind="stable")]  # each node's commands in one run
            records = rec[starts[sel][:, None] + np.arange(k)[None, :]]  # (n_k, k)
            rows = self._keys.appends(distinct[sel], records.view(np.uint8).reshape(len(sel), -1))
            blocks.append(rows.reshape(-1))
            picks.append(sel)
            widths.append(np.full(len(sel), rows.shape[1], dtype=np.int64))
        commands = from_buffer(np.concatenate(blocks), np.concatenate(widths))
        picked = np.concatenate(picks)  # command i appends to distinct[picked[i]]

        def resend(i: int) -> tuple[object, ...]:
            j = int(picked[i])
            value = rec[starts[j] : starts[j] + counts[j]].tobytes()
            return ("APPEND", self._keys.hash_keys(distinct[j : j + 1])[0], value)

        self._router.run_resp(key_slots[picked], commands, resend, idempotent=False)

    def publish(self, written: Written) -> None:
        """List ``written``'s tracks as live, inside the store's open transaction."""
        for part in written.parts:
            staged = self._staged.get(part.name)
            if staged is None:
                raise StoreError(f"index part {part.name} was not written by this process")
            self._manifest.publish(staged.rows)

    def remove(self, track_ids: Iterable[int]) -> None:
        """Tombstone ``track_ids``, inside the store's open transaction."""
        self._manifest.remove(track_ids)

    def abort(self, written: Written | None) -> None:
        """The transaction rolled back (taking the manifest rows): delete ``written`` from Redis."""
        for part in written.parts if written is not None else ():
            staged = self._staged.pop(part.name, None)
            if staged is not None:
                self._purge_part(part.name, [r.slot for r in staged.rows])

    def add(self, batch: Sequence[TrackPostings]) -> Written:
        return add_in_own_transaction(self, self._db, batch)

    def compact(self, max_segments: int = 1) -> int:
        """Delete removed tracks' postings, peaks and hash lists from the cluster, then their
        catalog rows; returns how many tracks were purged. Safe to interrupt: a purge is
        idempotent and the rows stay (hidden) until it is done."""
        self.refresh(force=True)
        gone = self._manifest.removed()
        for i in range(0, len(gone), PURGE_TRACKS):
            chunk = gone[i : i + PURGE_TRACKS]
            self._purge_slots([r.slot for r in chunk])
            with self._db.transaction():
                self._manifest.forget(r.track_id for r in chunk)
        if gone:
            self.cleanup()
        return len(gone)

    def cleanup(self) -> int:
        """Delete the parts no published track belongs to (a dead writer's, or emptied by
        compaction); only under the writer lock. Returns how many parts were deleted."""
        with self._errors("listing index parts"):
            names = {_bytes(n).decode() for n in self._client.smembers(self._ns + b":parts")}
        stale = names - self._manifest.parts() - set(self._staged)
        for name in sorted(stale):
            with self._errors("reading an index part"):
                data = _bytes(self._client.get(self._key(b"part", name)))
            record = np.frombuffer(data, dtype=[("slot", "<u4"), ("track", "<i8")])
            self._purge_part(name, record["slot"].astype(np.int64).tolist())
        return len(stale)

    def _purge_part(self, name: str, slots: Sequence[int]) -> None:
        self._purge_slots(slots)
        with self._errors("deleting an index part"):
            self._client.delete(self._key(b"part", name))
            self._client.srem(self._ns + b":parts", name)

    def _purge_slots(self, slots: Sequence[int]) -> None:
        """Delete every posting, peak list and hash list of ``slots`` (idempotent)."""
        if not slots:
            return
        with self._errors("deleting postings"):
            lists = self._router.get([self._key(b"t", s) for s in slots])
            by_hash: dict[int, list[int]] = {}
            for slot, data in zip(slots, lists, strict=True):
                for h in np.frombuffer(data or b"", dtype="<u4").tolist():
                    by_hash.setdefault(h, []).append(slot)
            hashes = np.array(sorted(by_hash, key=lambda h: (h & (BUCKETS - 1), h)), dtype=np.uint32)
            drops = [np.array(by_hash[h], dtype="<u4").tobytes() for h in hashes.tolist()]
            self._router.run(_per_bucket(FILTER_SCRIPT, hashes, self.hash_keys(hashes), drops), idempotent=True)
            deletes: list[Command] = [(k, ("DEL", k)) for s in slots for k in (self._key(b"p", s), self._key(b"t", s))]
            self._router.run(deletes, idempotent=True)


def _bytes(reply: object) -> bytes:
    """A reply of this client (made without ``decode_responses``): bytes, or None for no key."""
    if reply is None:
        return b""
    assert isinstance(reply, bytes), type(reply)
    return reply


def _per_bucket(script: str, hashes: np.ndarray, keys: list[bytes], args: list[bytes]) -> list[Command]:
    """Calls of ``script`` with ``keys[i]``/``args[i]`` grouped by bucket (``hashes`` sorted by
    bucket): one call per bucket, or per ``SCRIPT_KEYS`` keys of it."""
    buckets = (hashes & np.uint32(BUCKETS - 1)).tolist()
    commands: list[Command] = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or buckets[i] != buckets[start] or i - start == SCRIPT_KEYS:
            n = i - start
            commands.append((keys[start], ("EVAL", script, n, *keys[start:i], *args[start:i])))
            start = i
    return commands


def _set(key: bytes, value: bytes) -> Command:
    return (key, ("SET", key, value))
