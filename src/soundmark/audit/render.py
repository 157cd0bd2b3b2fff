"""An audit report as text: a readable listing, one JSON document, or CSV with one row per pair."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from soundmark.audit.groups import PairOverlap, Segment
from soundmark.audit.run import AuditReport

CSV_COLUMNS = (
    "group", "a", "b", "kind", "shared_seconds", "fraction_a", "fraction_b", "offset_seconds",
    "a_start", "a_end", "b_start", "b_end", "segments", "votes", "peak_share",
)  # fmt: skip


def clock(seconds: float) -> str:
    """M:SS.s, or H:MM:SS.s from an hour on."""
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def _segment_text(s: Segment) -> str:
    return f"{clock(s.a_start)}–{clock(s.a_end)} = {clock(s.b_start)}–{clock(s.b_end)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summary(report: AuditReport) -> str:
    n_pairs = len(report.pairs)
    return (
        f"audited {len(report.files)} files ({report.audio_seconds / 3600:.2f} h of audio) in "
        f"{report.wall_seconds:.1f} s; {len(report.failures)} could not be read; "
        f"{_count(len(report.groups), 'group')} sharing audio ({_count(n_pairs, 'pair')})"
    )


def as_text(report: AuditReport) -> str:
    """Groups with numbered members, then one line per pair: kind, shared time, where."""
    files = {f.key: f for f in report.files}
    lines = [summary(report)]
    for gi, g in enumerate(report.groups, 1):
        num = {k: i for i, k in enumerate(g.members, 1)}
        lines += ["", f"group {gi}: {len(g.members)} files"]
        lines += [f"  [{num[k]}] {files[k].name}  ({clock(files[k].duration)})" for k in g.members]
        for p in g.pairs:
            verb = {"same": "same as", "contains": "contains", "overlap": "overlaps"}[p.kind]
            lines.append(
                f"  [{num[p.a]}] {verb} [{num[p.b]}]: {p.shared_seconds:.1f} s shared "
                f"({p.fraction_a:.0%} of [{num[p.a]}], {p.fraction_b:.0%} of [{num[p.b]}]), "
                + "; ".join(_segment_text(s) for s in p.segments)
            )
    for path, reason in report.failures:
        lines.append(f"could not read {path}: {reason}")
    return "\n".join(lines)


def _pair_json(p: PairOverlap, report: AuditReport) -> dict[str, Any]:
    files = {f.key: f for f in report.files}
    return {
        "a": files[p.a].name, "b": files[p.b].name, "kind": p.kind, "shared_seconds": p.shared_seconds,
        "fraction_a": p.fraction_a, "fraction_b": p.fraction_b, "offset_seconds": round(p.offset_seconds, 2),
        "segments": [vars(s) for s in p.segments], "votes": p.votes, "peak_share": p.peak_share,
    }  # fmt: skip


def as_json(report: AuditReport) -> str:
    files = {f.key: f for f in report.files}
    doc = {
        "source": report.source,
        "files": len(report.files),
        "audio_seconds": round(report.audio_seconds, 1),
        "wall_seconds": round(report.wall_seconds, 2),
        "failures": [{"path": path, "reason": reason} for path, reason in report.failures],
        "groups": [
            {
                "members": [
                    {"path": files[k].name, "duration": round(files[k].duration, 2), "title": files[k].title}
                    for k in g.members
                ],
                "pairs": [_pair_json(p, report) for p in g.pairs],
            }
            for g in report.groups
        ],
    }
    return json.dumps(doc, ensure_ascii=False)


def as_csv(report: AuditReport) -> str:
    """A header and one row per pair (the strongest segment's bounds; ``segments`` lists all)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for gi, g in enumerate(report.groups, 1):
        for p in g.pairs:
            row = _pair_json(p, report)
            first = p.segments[0]
            out.writerow([
                gi, row["a"], row["b"], p.kind, p.shared_seconds, p.fraction_a, p.fraction_b,
                row["offset_seconds"], first.a_start, first.a_end, first.b_start, first.b_end,
                ";".join(f"{s.a_start}-{s.a_end}={s.b_start}-{s.b_end}" for s in p.segments), p.votes, p.peak_share,
            ])  # fmt: skip
    return buf.getvalue()
