"""Redis commands for thousands of keys at once, encoded with NumPy instead of a loop per key.

Owned by ``index/redis_cluster.py``: a lookup sends ~1,000 MGETs naming ~7,000 keys, a write
~1,000 scripts naming ~100,000 keys and values. Built one Python object at a time that costs
~10 µs a key on a loaded machine (most of a lookup); here every step is an array operation.

A ``Ragged`` is n byte strings laid end to end: ``buf`` (uint8) and ``offsets`` (int64, n + 1),
string i being ``buf[offsets[i]:offsets[i + 1]]``. ``concat`` joins several of them string by
string (row i of the result is row i of each part in turn), which is how a key is made of its
prefix, bucket and hash, how a bulk string is made of its length header and payload, and how a
command is made of its header and its bulk strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
LONG = 256  # mean bytes per string above which ``concat`` copies string by string


@dataclass(frozen=True)
class Ragged:
    buf: np.ndarray  # uint8, the strings end to end
    offsets: np.ndarray  # int64 (n + 1,): where each string starts, then the end

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def groups(self, bounds: np.ndarray) -> Ragged:
        """Consecutive strings joined into one per group: group g is strings
        ``bounds[g]:bounds[g + 1]`` (``bounds`` int64, starting at 0 and ending at n)."""
        return Ragged(self.buf, self.offsets[bounds])

    def item(self, i: int) -> bytes:
        return self.buf[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def tolist(self) -> list[bytes]:
        data = self.buf.tobytes()
        cuts = self.offsets.tolist()
        return [data[a:b] for a, b in itertools.pairwise(cuts)]


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def const(text: bytes, n: int) -> Ragged:
    """``text`` n times."""
    return Ragged(np.tile(np.frombuffer(text, dtype=np.uint8), n), np.arange(n + 1, dtype=np.int64) * len(text))


def from_buffer(data: bytes | np.ndarray, lengths: np.ndarray) -> Ragged:
    """Consecutive pieces of ``data`` of the given lengths (their sum is ``len(data)``)."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data.view(np.uint8).reshape(-1)
    return Ragged(buf, _offsets(np.asarray(lengths, dtype=np.int64)))


def _digits(values: np.ndarray, base: int) -> Ragged:
    """Each value (non-negative, below 2**62) in ``base`` (10 or 16, lower case, no leading zeros)."""
    v = np.asarray(values, dtype=np.int64)
    if len(v) == 0:
        return Ragged(np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64))
    powers = base ** np.arange(20 if base == 10 else 16, dtype=np.int64)
    width = max(1, int(np.searchsorted(powers, int(v.max()), side="right")))
    n_digits = np.maximum(np.searchsorted(powers[:width], v, side="right"), 1)
    # column j holds the digit of weight base ** (width - 1 - j): right-aligned, leading zeros cut
    digits = (v[:, None] // powers[None, width - 1 :: -1]) % base
    keep = np.arange(width)[None, :] >= (width - n_digits)[:, None]
    return Ragged(_DIGITS[digits[keep]], _offsets(n_digits))


def hexadecimal(values: np.ndarray) -> Ragged:
    """Values as ``format(v, "x")``."""
    return _digits(values, 16)


def decimal(values: np.ndarray) -> Ragged:
    """Values as ``str(v)``."""
    return _digits(values, 10)


def concat(parts: Sequence[Ragged]) -> Ragged:
    """String i of the result: string i of every part, in order (all parts have n strings)."""
    n = len(parts[0])
    lengths = [p.lengths for p in parts]
    offsets = _offsets(np.sum(lengths, axis=0) if n else np.zeros(0, dtype=np.int64))
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    start = offsets[:-1].copy()
    for p, lens in zip(parts, lengths, strict=True):
        if n and p.offsets[-1] - p.offsets[0] > LONG * n:  # few long strings: a slice copy each
            for dst, a, b in zip(start.tolist(), p.offsets[:-1].tolist(), p.offsets[1:].tolist(), strict=True):
                out[dst : dst + b - a] = p.buf[a:b]
        else:  # byte k of part p (in string i) goes to start[i] + (k - p.offsets[i])
            shift = np.repeat(start - p.offsets[:-1], lens)
            out[np.arange(p.offsets[0], p.offsets[-1], dtype=np.int64) + shift] = p.buf[p.offsets[0] : p.offsets[-1]]
        start += lens
    return Ragged(out, offsets)


def bulk(strings: Ragged) -> Ragged:
    """Each string as a RESP bulk string: ``$<length>\\r\\n<bytes>\\r\\n``."""
    n = len(strings)
    return concat([const(b"$", n), decimal(strings.lengths), const(b"\r\n", n), strings, const(b"\r\n", n)])


def command_set(head: Sequence[bytes], args: Sequence[Ragged], counts: np.ndarray, *, numkeys: bool = False) -> Ragged:
    """Commands in RESP, one per row: ``head`` (fixed arguments, the same in every command),
    then (``numkeys``) ``counts[g]`` as an argument, then row g of each of ``args`` — each a run
    of ``counts[g]`` bulk strings (``bulk`` grouped with ``Ragged.groups``)."""
    n = len(counts)
    counts = np.asarray(counts, dtype=np.int64)
    fixed = b"".join(b"$%d\r\n%s\r\n" % (len(h), h) for h in head)
    n_args = counts * len(args) + len(head) + numkeys
    parts = [const(b"*", n), decimal(n_args), const(b"\r\n" + fixed, n)]
    if numkeys:
        parts.append(bulk(decimal(counts)))
    return concat([*parts, *args])
