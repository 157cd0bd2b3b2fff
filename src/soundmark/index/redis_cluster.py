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
  N:lease:<name>   the lease of the writer of part ``name`` while it writes and publishes
                   (``index/redis_leases.py``), taken before anything else of the write
  N:part:<name>    one write's tracks: (uint32 slot, int64 track id) each, stored before anything
                   else but the lease, so a writer that dies half-way leaves a record of what to delete
  N:parts          the set of every part name not yet deleted
  N:slots          the slot counter (INCRBY)

Visibility (the ports' write → publish → refresh): ``write`` stores everything above, yet a
lookup only returns postings of tracks that the store's catalog lists as published and not
removed (``index/redis_manifest.py``); each process keeps that live set in RAM and refreshes it
incrementally by generation (``index/redis_live.py``: a publish costs O(batch), not O(tracks)).
``abort`` deletes this writer's unpublished part, ``compact`` removed tracks' data.

Several writers at once (processes on several machines, one shared catalog): ``cleanup`` (run
when any writer starts, and after compaction) deletes only the unpublished parts whose lease is
gone, i.e. whose writer died or hung for longer than the lease; ``index/redis_leases.py`` says
why that is safe.

The per-hash cap counts the live postings of a hash only (as ``MemoryIndex``).

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
    budget_dropped,
    check_batch,
    within_budget,
)
from soundmark.index.redis_keys import BUCKETS, LAYOUT, KeyNames, buckets_of
from soundmark.index.redis_leases import LEASE_MS, PartLeases
from soundmark.index.redis_live import LiveSlots
from soundmark.index.redis_manifest import RedisManifest, TrackRow
from soundmark.index.redis_nodes import Command, NodeRouter
from soundmark.index.redis_peaks import MAX_PEAK_FRAME, PEAK_BIN_BITS, PeakCache, decode_peaks, encode_peaks
from soundmark.index.redis_resp import Ragged, command_set, from_buffer
from soundmark.index.redis_url import parse_redis_url

RECORD = np.dtype([("slot", "<u4"), ("time", "<u4")])  # one posting in a hash's value
PURGE_TRACKS = 256  # tracks whose postings one purge round rewrites (bounds its memory)
ROUND_BYTES = 4 << 20  # commands sent between two renewals of the lease (~60,000 APPENDs)

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

    def __init__(self, url: str, db: IndexDatabase, *, lease_ms: int = LEASE_MS):
        """``lease_ms``: how long a write's lease lasts unrenewed (``LEASE_MS``; tests shorten it)."""
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
        self._leases = PartLeases(self._client, self._keys, self._errors, lease_ms)
        self._peaks = PeakCache()
        self._staged: dict[str, _Staged] = {}
        # The live set: by slot for lookups, by track id for peaks.
        self._slots = LiveSlots()
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
        gen, rows, full = self._manifest.changed_since(self._gen)
        self._version = version
        if gen == self._gen and not rows:
            return
        # A full reload (compaction forgot rows this reader may still hold) is built aside and
        # swapped in at the end, so lookups meanwhile still see the old live set.
        slots, live = (LiveSlots(), {}) if full else (self._slots, self._live)
        postings, size = (0, 0) if full else (self._postings, self._bytes)
        committed: set[str] = set()
        gone: list[int] = []  # slots no longer live
        new: list[TrackRow] = []
        for r in rows:  # O(rows changed), never O(tracks) (but a reload after compaction)
            if self._staged.pop(r.part, None) is not None:
                committed.add(r.part)  # published: no longer this writer's to abort
            old = live.get(r.track_id)
            if old is not None and (r.removed or old.slot != r.slot):
                del live[r.track_id]
                gone.append(old.slot)
                postings -= old.postings
                size -= old.bytes
            if not r.removed and r.track_id not in live:
                live[r.track_id] = r
                new.append(r)
                postings += r.postings
                size += r.bytes
        slots.remove(np.array(gone, dtype=np.int64))
        slots.add(np.array([r.slot for r in new], dtype=np.int64), np.array([r.track_id for r in new], dtype=np.int64))
        self._slots, self._live, self._postings, self._bytes = slots, live, postings, size
        self._gen = gen
        for name in sorted(committed):
            self._leases.release_committed(name)

    def postings(self) -> int:
        """Live postings (a removed track stops counting at once)."""
        return self._postings

    def stats(self) -> IndexStats:
        return IndexStats(self._postings, 0, self._bytes)

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int, budget: int | None = None) -> Hits:
        """Postings of ``hashes`` (unique uint32) of live tracks; hashes with more live postings
        than the cap are skipped, and with a ``budget`` the commonest beyond it
        (``within_budget``: every list is read, the budget bounds the vote's work)."""
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
        tids = self._slots.track_ids(rec["slot"].astype(np.int64))
        live = tids >= 0
        pos, tids, times = pos[live], tids[live], rec["time"][live].astype(np.int64)
        counts = np.bincount(pos, minlength=len(q))
        allowed = within_budget(counts, max_postings_per_hash, budget)
        keep = allowed[pos]
        return Hits(pos[keep], tids[keep], times[keep], budget_dropped(counts, max_postings_per_hash, allowed))

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
        # 0. the lease: while it lasts, no other writer's cleanup deletes this part
        self._leases.take(name)
        slots: list[int] = []
        try:
            with self._errors("allocating track slots"):
                last = int(self._client.incrby(self._ns + b":slots", len(batch)))
            if last >= 1 << 32:
                raise StoreError(f"the index at {self.url} has used all 2**32 track slots")
            slots = list(range(last - len(batch) + 1, last + 1))
            record = np.zeros(len(batch), dtype=[("slot", "<u4"), ("track", "<i8")])
            record["slot"], record["track"] = slots, ids
            with self._errors("storing a batch"):
                # 1. what to delete if we die: before anything else of the write but the lease
                self._client.set(self._key(b"part", name), record.tobytes())
                self._client.sadd(self._ns + b":parts", name)
                # 2. per track: peaks and distinct hashes, a round per ROUND_BYTES
                rows, commands, size_of_round = [], [], 0
                for slot, p in zip(slots, batch, strict=True):
                    packed = encode_peaks(p.peaks)
                    distinct = np.unique(np.asarray(p.hashes, dtype=np.uint32)).astype("<u4").tobytes()
                    commands += [_set(self._key(b"p", slot), packed), _set(self._key(b"t", slot), distinct)]
                    size = len(p.hashes) * RECORD.itemsize + len(packed) + len(distinct)
                    rows.append(TrackRow(int(p.track_id), slot, name, len(p.hashes), size, False))
                    size_of_round += len(packed) + len(distinct)
                    if size_of_round >= ROUND_BYTES:
                        self._leases.renew(name, "writing peaks")
                        self._router.run(commands, idempotent=True)
                        commands, size_of_round = [], 0
                if commands:
                    self._leases.renew(name, "writing peaks")
                    self._router.run(commands, idempotent=True)
                # 3. the postings: APPENDs to the hash keys, a round per ROUND_BYTES
                self._appends(batch, slots, name)
                self._leases.renew(name, "written")  # a whole lease for the wait until the publish
        except BaseException:
            self._purge_part(name, slots)
            raise
        self._staged[name] = _Staged(tuple(rows))
        part = WrittenPart(name, len(batch), sum(r.postings for r in rows), sum(r.bytes for r in rows))
        return Written(tuple(ids), (part,))

    def _appends(self, batch: Sequence[TrackPostings], slots: Sequence[int], part: str) -> None:
        """APPEND the batch's postings to their hash keys, a command per distinct hash, every
        node's commands in one pipeline, in rounds of ``ROUND_BYTES`` with the lease of
        ``part`` renewed before each. Encoded as one fixed-width matrix per number of postings
        a hash has in the batch (mostly one), no Python object per key."""
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

        targets = key_slots[picked]
        offsets = commands.offsets
        rounds = _rounds(offsets)
        for k, (a, b) in enumerate(itertools.pairwise(rounds), start=1):

            def resend(i: int, a: int = a) -> tuple[object, ...]:
                j = int(picked[a + i])
                value = rec[starts[j] : starts[j] + counts[j]].tobytes()
                return ("APPEND", self._keys.hash_keys(distinct[j : j + 1])[0], value)

            self._leases.renew(part, f"appending round {k} of {len(rounds) - 1}")
            chunk = Ragged(commands.buf, offsets[a : b + 1])
            self._router.run_resp(targets[a:b], chunk, resend, idempotent=False)

    def publish(self, written: Written) -> None:
        """List ``written``'s tracks as live, inside the store's open transaction; its lease is
        renewed first (and released by the ``refresh`` that sees the commit)."""
        for part in written.parts:
            staged = self._staged.get(part.name)
            if staged is None:
                raise StoreError(f"index part {part.name} was not written by this process")
            self._leases.renew(part.name, "publishing")
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
        """Delete the parts no published track belongs to and no writer holds a lease on (a
        dead or hung writer's, or emptied by compaction); safe while other writers write.
        Returns how many parts were deleted."""
        deleted = 0
        for name in self._unpublished_parts():
            deleted += self._purge_if_abandoned(name)
        return deleted

    def _unpublished_parts(self) -> list[str]:
        """The parts in the cluster that the catalog does not list (nor this writer holds)."""
        with self._errors("listing index parts"):
            names = {_bytes(n).decode() for n in self._client.smembers(self._ns + b":parts")}
        return sorted(names - self._manifest.parts() - set(self._staged))

    def _purge_if_abandoned(self, name: str) -> bool:
        """Delete part ``name`` if its lease is gone and the catalog does not list it, checked
        now and in this order (``index/redis_leases.py`` says why); returns whether it did."""
        if self._leases.held(name) or name in self._manifest.parts():
            return False
        with self._errors("reading an index part"):
            data = _bytes(self._client.get(self._key(b"part", name)))
        record = np.frombuffer(data, dtype=[("slot", "<u4"), ("track", "<i8")])
        self._purge_part(name, record["slot"].astype(np.int64).tolist())
        return True

    def _purge_part(self, name: str, slots: Sequence[int]) -> None:
        """Delete part ``name``'s data, then its record, then its lease (last: while the data
        goes, other writers' cleanups leave the part to this one)."""
        self._purge_slots(slots)
        with self._errors("deleting an index part"):
            self._client.delete(self._key(b"part", name))
            self._client.srem(self._ns + b":parts", name)
        self._leases.release(name)

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


def _rounds(offsets: np.ndarray) -> list[int]:
    """Where each round of commands starts (then the end), for commands laid out at
    ``offsets`` (n + 1): about ``ROUND_BYTES`` each, at least one command."""
    cuts = [0]
    n = len(offsets) - 1
    while cuts[-1] < n:
        start = cuts[-1]
        end = int(np.searchsorted(offsets, offsets[start] + ROUND_BYTES, side="right")) - 1
        cuts.append(min(max(end, start + 1), n))
    return cuts


def _set(key: bytes, value: bytes) -> Command:
    return (key, ("SET", key, value))
