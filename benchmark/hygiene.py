"""Data hygiene: exact and near-duplicate images within and across the splits of any dataset.

A duplicate on both sides of train/test makes a memoriser look private and a classifier look
good; on real folders we found byte-identical pairs under different names and rotated copies
of one source tile. This module finds them for every dataset plugin (it imports none) from the
decoded ``uint8`` N×C×H×W pixels the benchmark actually uses:

* **exact**: blake2b (16 bytes) of the image shape and bytes. Two files that decode to the same
  pixels are one image, whatever their names or encodings.
* **near**: a 64-bit DCT perceptual hash, bit for bit ``imagehash.phash``: grayscale (Pillow's
  ITU-R 601 weights), Lanczos resize to 32×32, 2-D DCT-II, the top-left 8×8 block, bit =
  coefficient > the block's median. A pair whose hashes differ in at most
  :data:`NEAR_THRESHOLD` bits, also after any of the 8 dihedral transforms (rotations by 90°
  and flips: LC25000 holds flipped and rotated copies of its source tiles), is a candidate; it
  is a near duplicate when the Pearson correlation of the two 32×32 grayscale thumbnails, best
  over the transforms, is at least :data:`NEAR_CORRELATION`. The transforms cost no pixels: the
  DCT of a flipped image is the same block with odd columns (or rows) negated, that of a
  transposed image the transposed block.

Why not the ``imagehash`` library: it hashes one PIL image per Python call (convert, resize,
two scipy DCTs, a median): measured on 2,000 Kermany X-rays of 128 px, 0.3 ms an image — as fast
as this module for one hash, but the 8 transforms need 8 calls (4.6–5.5 s instead of
0.6–1.0 s), images must be PIL objects, and it has no pairwise search. Here the resize is two
matrix products over the whole stack with Pillow's own fixed-point Lanczos weights (float64
holds every integer sum exactly, so results equal Pillow's to the bit), the DCT two more, the
transforms come from the DCT block, and pairwise Hamming distances are XOR +
``np.bitwise_count`` in chunks: 5,856 images of 128 px hash and compare in 3–8 s on one core of
the shared 2-core VM, depending on its load.

**Thresholds** (measured; docs/datasets.md, "Data hygiene", has the numbers): on the 5,856
Kermany chest X-rays at 128 px, all 30 byte-identical groups the source marks are exact here,
but X-rays look alike: 14 pairs of *different* children lie within 2 bits and 10,842 within 8,
so no Hamming threshold alone is safe. Their thumbnail correlation is at most 0.967 (0.973
within 10 bits), while re-encoded (JPEG q50–90), brightened, contrast-stretched, resized,
noisy, rotated and flipped copies lie within 6 bits with correlation ≥ 0.999. Hence 8 bits to
find candidates (recall) and 0.99 to accept them (no false positive on these data, nor on the
1,216 distinct LC25000 tiles, none of which lie within 8 bits of another). Crops and small
rotations are out of reach by design.

Clusters join exact and near pairs with union-find; a :class:`DuplicateReport` counts pairs
within each split and across each pair of splits, lists the clusters by image name, and
serialises to JSON.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import DataSplits, ImageSet

__all__ = [
    "NEAR_CORRELATION",
    "NEAR_THRESHOLD",
    "POLICIES",
    "Cluster",
    "DuplicateReport",
    "Fingerprints",
    "audit",
    "audit_prepared",
    "clusters_of",
    "content_hashes",
    "duplicate_clusters",
    "duplicate_pairs",
    "exact_pairs",
    "fingerprint",
    "near_pairs",
    "phash",
    "thumbnail_correlation",
]

NEAR_THRESHOLD = 8  # Hamming distance (of 64 bits) up to which two images are candidates
NEAR_CORRELATION = 0.99  # thumbnail correlation from which a candidate is a near duplicate
POLICIES = ("group", "drop", "report")
_BLOCK = 1 << 23  # float64 pixels (64 MiB) or uint64 distances per block: bounds memory
_PRECISION = 22  # Pillow's fixed-point bits of resampling weights (32 - 8 - 2)


# --- fingerprints ------------------------------------------------------------------------------
def content_hashes(images: np.ndarray) -> np.ndarray:
    """blake2b-128 of each image's shape and bytes, as an ``S16`` array of length N."""
    out = np.empty(len(images), dtype="S16")
    for i in range(len(images)):
        image = np.ascontiguousarray(images[i])
        digest = hashlib.blake2b(repr(image.shape).encode(), digest_size=16)
        digest.update(image.tobytes())
        out[i] = digest.digest()
    return out


def _lanczos(x: np.ndarray) -> np.ndarray:
    # Pillow's truncated sinc: sinc(x)·sinc(x/3) on [-3, 3).
    inside = (x >= -3.0) & (x < 3.0)
    return np.where(inside, np.sinc(x) * np.sinc(x / 3.0), 0.0)


def _resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point Lanczos weights (out × in, integer-valued float64)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    weights = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = _lanczos((np.arange(lo, hi) - center + 0.5) / filterscale)
        total = w.sum()
        if total != 0.0:
            w = w / total
        # C's (int)(±0.5 + w·2^22): rounds half away from zero.
        weights[xx, lo:hi] = np.trunc(w * (1 << _PRECISION) + np.where(w < 0, -0.5, 0.5))
    return weights


def _fixed_point(values: np.ndarray) -> np.ndarray:
    # (sum + 2^21) >> 22, clipped to 0..255: exact, the sums are integers below 2^53.
    return np.clip(np.floor((values + (1 << (_PRECISION - 1))) / (1 << _PRECISION)), 0, 255)


def _gray32(images: np.ndarray) -> np.ndarray:
    """Pillow ``convert("L").resize((32, 32), LANCZOS)`` of a uint8 N×C×H×W block, as float."""
    stack = np.asarray(images)
    if stack.shape[1] == 3:
        weights = np.array([19595, 38470, 7471], dtype=np.uint32)  # 601-2 luma in 16.16 fixed point
        gray = np.einsum("nchw,c->nhw", stack, weights, dtype=np.uint32)
        pixels = ((gray + 0x8000) >> 16).astype(np.float64)
    else:
        pixels = stack[:, 0].astype(np.float64)
    n, h, w = pixels.shape
    # Pillow resamples horizontally first, rounding to uint8 between the passes. 2-D products:
    # numpy runs stacked (3-D) matmuls without BLAS, ~25× slower.
    if w != 32:
        pixels = _fixed_point(pixels.reshape(n * h, w) @ _resize_weights(w, 32).T)
        pixels = pixels.reshape(n, h, 32)
    if h != 32:
        rows = pixels.transpose(0, 2, 1).reshape(n * 32, h) @ _resize_weights(h, 32).T
        pixels = _fixed_point(rows).reshape(n, 32, 32).transpose(0, 2, 1)
    return np.asarray(pixels)


_DCT = np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32)[None, :] + 1) / 64)
_SIGN = (-1.0) ** np.arange(8)


def _bits(blocks: np.ndarray) -> np.ndarray:
    flat = blocks.reshape(len(blocks), 64)
    above = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(above, axis=1).view(">u8")[:, 0].astype(np.uint64)


def _dihedral(blocks: np.ndarray) -> list[np.ndarray]:
    """The 8×8 blocks of the 8 dihedral transforms: identity first, then flips, transposes."""
    flips = [blocks, blocks * _SIGN[None, None, :], blocks * _SIGN[None, :, None],
             blocks * _SIGN[None, :, None] * _SIGN[None, None, :]]
    return flips + [b.transpose(0, 2, 1) for b in flips]


def _thumb_variants(thumbs: np.ndarray) -> np.ndarray:
    """The 8 dihedral transforms of N×32×32 thumbnails (N×8×32×32), in :func:`_dihedral` order."""
    flips = [thumbs, thumbs[:, :, ::-1], thumbs[:, ::-1, :], thumbs[:, ::-1, ::-1]]
    return np.stack(flips + [f.transpose(0, 2, 1) for f in flips], axis=1)


# Pixel order of the 8 transforms of a flattened 32×32 thumbnail.
_PERMS = _thumb_variants(np.arange(1024).reshape(1, 32, 32))[0].reshape(8, 1024)


def phash(images: np.ndarray, dihedral: bool = False) -> np.ndarray:
    """64-bit DCT perceptual hashes (``imagehash.phash``) of uint8 N×C×H×W images.

    Returns uint64 of shape N, or N×8 with ``dihedral`` (column 0 the image itself, then its
    flips, rotations and transposes). Bit 63 is DCT coefficient (0, 0), as ``str(imagehash)``.
    """
    hashes, _ = _hash_and_thumbs(images, dihedral)
    return hashes if dihedral else hashes[:, 0]


def _hash_and_thumbs(images: np.ndarray, dihedral: bool) -> tuple[np.ndarray, np.ndarray]:
    n = len(images)
    hashes = np.zeros((n, 8 if dihedral else 1), dtype=np.uint64)
    thumbs = np.zeros((n, 32, 32), dtype=np.uint8)
    chunk = max(1, _BLOCK // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, n, chunk):
        gray = _gray32(images[start:start + chunk])
        thumbs[start:start + chunk] = gray
        blocks = np.einsum("uy,nyx,vx->nuv", _DCT, gray, _DCT, optimize=True)
        variants = _dihedral(blocks) if dihedral else [blocks]
        for t, variant in enumerate(variants):
            hashes[start:start + chunk, t] = _bits(variant)
    return hashes, thumbs


@dataclass(frozen=True)
class Fingerprints:
    """Per image: content hash (``S16``), the 8 dihedral pHashes (N×8 uint64) and the 32×32
    grayscale thumbnail the hash was computed from (N×32×32 uint8, for verification)."""

    exact: np.ndarray
    hashes: np.ndarray
    thumbs: np.ndarray

    def __len__(self) -> int:
        return len(self.exact)

    def subset(self, index: np.ndarray | Sequence[int]) -> Fingerprints:
        """The fingerprints at ``index``."""
        idx = np.asarray(index)
        return Fingerprints(self.exact[idx], self.hashes[idx], self.thumbs[idx])

    @staticmethod
    def concat(parts: Sequence[Fingerprints]) -> Fingerprints:
        """Fingerprints of concatenated sets."""
        return Fingerprints(np.concatenate([p.exact for p in parts]),
                            np.concatenate([p.hashes for p in parts]),
                            np.concatenate([p.thumbs for p in parts]))


def fingerprint(images: np.ndarray) -> Fingerprints:
    """Content hashes, dihedral pHashes and thumbnails of uint8 N×C×H×W images."""
    hashes, thumbs = _hash_and_thumbs(images, dihedral=True)
    return Fingerprints(content_hashes(images), hashes, thumbs)


# --- pairs and clusters ------------------------------------------------------------------------
def near_pairs(
    hashes: np.ndarray, threshold: int = NEAR_THRESHOLD, dihedral: bool = True,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j within ``threshold`` bits.

    ``hashes`` is N (one hash each) or N×T (transform 0 the image itself); with ``dihedral``
    the distance is the smallest over the transforms of image i against image j as it is.
    """
    table = hashes if hashes.ndim == 2 else hashes[:, None]
    if not dihedral:
        table = table[:, :1]
    base = table[:, 0]
    found_i, found_j, found_d = [], [], []
    chunk = chunk or max(1, _BLOCK // max(1, len(table)))
    for start in range(0, len(table), chunk):
        block = table[start:start + chunk]
        rest = base[start:]
        dist = np.full((len(block), len(rest)), 255, dtype=np.uint8)
        for t in range(table.shape[1]):
            np.minimum(dist, np.bitwise_count(block[:, t, None] ^ rest[None, :]), out=dist)
        rows, cols = np.nonzero(dist <= threshold)
        keep = cols > rows  # j > i (cols are offset by start, like rows)
        found_i.append(rows[keep] + start)
        found_j.append(cols[keep] + start)
        found_d.append(dist[rows[keep], cols[keep]])
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint8)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def thumbnail_correlation(
    thumbs: np.ndarray, pairs_i: np.ndarray, pairs_j: np.ndarray, dihedral: bool = True,
    chunk: int = 1024,
) -> np.ndarray:
    """Pearson correlation of the thumbnails of each pair, the best over the 8 transforms of i.

    Brightness and contrast changes leave it at ~1; two flat thumbnails count as 1.
    """
    corr = np.zeros(len(pairs_i))
    if len(pairs_i) == 0:
        return corr
    used = np.unique(np.r_[pairs_i, pairs_j])
    flat = thumbs[used].reshape(len(used), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    is_flat = norm[:, 0] < 1e-6
    # Transforms permute pixels, so a transformed unit thumbnail is the permuted unit thumbnail.
    unit = flat / np.maximum(norm, 1e-6)
    perms = _PERMS if dihedral else _PERMS[:1]
    at_i, at_j = np.searchsorted(used, pairs_i), np.searchsorted(used, pairs_j)
    for start in range(0, len(at_i), chunk):
        rows_i, rows_j = at_i[start:start + chunk], at_j[start:start + chunk]
        first = unit[rows_i[:, None, None], perms[None]]  # P × transforms × 1024
        best = np.einsum("ntk,nk->nt", first, unit[rows_j])
        corr[start:start + chunk] = best.max(axis=1)
    return np.where(is_flat[at_i] & is_flat[at_j], 1.0, corr)


def exact_pairs(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of every pair with equal content hashes."""
    order = np.argsort(exact, kind="stable")
    sorted_hashes = exact[order]
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    ends = np.r_[starts[1:], len(order)]
    pairs_i: list[int] = []
    pairs_j: list[int] = []
    for s, e in zip(starts, ends, strict=True):
        members = np.sort(order[s:e])
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                pairs_i.append(int(members[a]))
                pairs_j.append(int(members[b]))
    return np.asarray(pairs_i, dtype=np.int64), np.asarray(pairs_j, dtype=np.int64)


def clusters_of(n: int, pairs_i: np.ndarray, pairs_j: np.ndarray) -> list[np.ndarray]:
    """Connected components (union-find) of size ≥ 2 over ``n`` items, sorted members."""
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for a, b in zip(pairs_i.tolist(), pairs_j.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.asarray([root(i) for i in range(n)], dtype=np.int64)
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(np.bincount(roots, minlength=n)[roots] > 1).tolist():
        members.setdefault(int(roots[i]), []).append(i)
    return [np.asarray(m) for _, m in sorted(members.items())]


def duplicate_pairs(
    prints: Fingerprints,
    threshold: int = NEAR_THRESHOLD,
    correlation: float = NEAR_CORRELATION,
    dihedral: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Exact pairs (i, j) and near pairs (i, j) (verified, not exact) among ``prints``."""
    exact = exact_pairs(prints.exact)
    ni, nj, _ = near_pairs(prints.hashes, threshold, dihedral)
    keep = prints.exact[ni] != prints.exact[nj]
    ni, nj = ni[keep], nj[keep]
    keep = thumbnail_correlation(prints.thumbs, ni, nj, dihedral) >= correlation
    return exact, (ni[keep], nj[keep])


def duplicate_clusters(
    prints: Fingerprints,
    threshold: int = NEAR_THRESHOLD,
    correlation: float = NEAR_CORRELATION,
    dihedral: bool = True,
) -> list[np.ndarray]:
    """Clusters (index arrays, size ≥ 2) of exact and near duplicates among ``prints``."""
    (ei, ej), (ni, nj) = duplicate_pairs(prints, threshold, correlation, dihedral)
    return clusters_of(len(prints), np.r_[ei, ni], np.r_[ej, nj])


# --- the report --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """Images that are copies of each other: ``kind`` exact (all identical pixels) or near."""

    kind: str
    members: list[tuple[str, str]]  # (split, image name)

    @property
    def splits(self) -> list[str]:
        """The splits the cluster touches, in member order."""
        return list(dict.fromkeys(s for s, _ in self.members))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "members": [{"split": s, "name": n} for s, n in self.members]}


@dataclass
class DuplicateReport:
    """Duplicate pairs within each split and across splits, clusters by name, policy effects.

    ``within[split]`` and ``across["a~b"]`` count pairs as ``{"exact": n, "near": n}`` (near
    pairs are those within the threshold that are not exact). ``removed[split]`` names the
    images the policy dropped.
    """

    policy: str
    threshold: int
    correlation: float
    dihedral: bool
    images: dict[str, int]
    within: dict[str, dict[str, int]]
    across: dict[str, dict[str, int]]
    clusters: list[Cluster]
    removed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cross_split(self) -> list[Cluster]:
        """Clusters with members in more than one split (leaks, unless the policy is report)."""
        return [c for c in self.clusters if len(c.splits) > 1]

    def totals(self) -> dict[str, int]:
        """Pair counts summed: exact/near within splits and across splits."""
        return {
            "exact_within": sum(v["exact"] for v in self.within.values()),
            "near_within": sum(v["near"] for v in self.within.values()),
            "exact_across": sum(v["exact"] for v in self.across.values()),
            "near_across": sum(v["near"] for v in self.across.values()),
        }

    def summary(self) -> dict[str, Any]:
        """The counts and policy without the cluster list (what results.json keeps)."""
        return {
            "policy": self.policy, "near_threshold": self.threshold,
            "near_correlation": self.correlation, "dihedral": self.dihedral,
            **self.totals(), "within": self.within, "across": self.across,
            "clusters": len(self.clusters), "cross_split_clusters": len(self.cross_split),
            "removed": {k: len(v) for k, v in self.removed.items()},
        }

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready (clusters by name)."""
        return {**self.summary(), "images": self.images,
                "removed": {k: list(v) for k, v in self.removed.items()},
                "cluster_list": [c.to_json() for c in self.clusters]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DuplicateReport:
        """Inverse of :meth:`to_json`."""
        clusters = [Cluster(c["kind"], [(m["split"], m["name"]) for m in c["members"]])
                    for c in data.get("cluster_list", [])]
        return cls(data["policy"], int(data["near_threshold"]),
                   float(data["near_correlation"]), bool(data["dihedral"]),
                   dict(data.get("images", {})), dict(data["within"]), dict(data["across"]),
                   clusters, {k: list(v) for k, v in data.get("removed", {}).items()})

    def describe_leaks(self, limit: int = 5) -> str:
        """One line per cross-split cluster (at most ``limit``), naming the images."""
        lines = [f"  {c.kind}: " + ", ".join(f"{s}/{n}" for s, n in c.members[:4])
                 + (f" (+{len(c.members) - 4})" if len(c.members) > 4 else "")
                 for c in self.cross_split[:limit]]
        if len(self.cross_split) > limit:
            lines.append(f"  ... and {len(self.cross_split) - limit} more clusters")
        return "\n".join(lines)


def _names(split: str, data: ImageSet) -> list[str]:
    if data.names is not None:
        return [str(n) for n in np.asarray(data.names)]
    return [f"{split}[{i}]" for i in range(len(data))]


def audit(
    splits: Mapping[str, ImageSet],
    *,
    threshold: int = NEAR_THRESHOLD,
    correlation: float = NEAR_CORRELATION,
    dihedral: bool = True,
    policy: str = "report",
    removed: Mapping[str, Sequence[str]] | None = None,
    fingerprints: Mapping[str, Fingerprints] | None = None,
) -> DuplicateReport:
    """Find exact and near duplicates within and across ``splits``; report them by name.

    ``policy`` and ``removed`` only record what the caller already did; ``fingerprints`` (per
    split) skips hashing when the caller has them.
    """
    names_ = list(splits)
    prints = [fingerprints[s] if fingerprints is not None and s in fingerprints
              else fingerprint(np.asarray(splits[s].images)) for s in names_]
    split_of = np.concatenate([np.full(len(p), k) for k, p in enumerate(prints)])
    labels = [(s, n) for s in names_ for n in _names(s, splits[s])]
    every = Fingerprints.concat(prints)
    (ei, ej), (ni, nj) = duplicate_pairs(every, threshold, correlation, dihedral)
    # A split named "<split>_<probe>" (test_swapped, test_nomarker) is a view of <split> made
    # on purpose: its copies of <split> are not leaks.
    view = np.array([[b.startswith(f"{a}_") or a.startswith(f"{b}_") for b in names_]
                     for a in names_], dtype=bool)
    keep_e = ~view[split_of[ei], split_of[ej]]
    keep_n = ~view[split_of[ni], split_of[nj]]
    ei, ej, ni, nj = ei[keep_e], ej[keep_e], ni[keep_n], nj[keep_n]
    within = {s: {"exact": 0, "near": 0} for s in names_}
    across: dict[str, dict[str, int]] = {}
    for kind, (pi, pj) in (("exact", (ei, ej)), ("near", (ni, nj))):
        for a, b in zip(split_of[pi].tolist(), split_of[pj].tolist(), strict=True):
            if a == b:
                within[names_[a]][kind] += 1
            else:
                key = f"{names_[min(a, b)]}~{names_[max(a, b)]}"
                across.setdefault(key, {"exact": 0, "near": 0})[kind] += 1
    clusters = []
    for members in clusters_of(len(every), np.r_[ei, ni], np.r_[ej, nj]):
        kind = "exact" if len(set(every.exact[members].tolist())) == 1 else "near"
        clusters.append(Cluster(kind, [labels[i] for i in members.tolist()]))
    return DuplicateReport(
        policy, threshold, correlation, dihedral, {s: len(splits[s]) for s in names_}, within,
        across,
        clusters, {k: list(v) for k, v in (removed or {}).items()},
    )


def audit_prepared(data: DataSplits) -> dict[str, Any]:
    """The prepare stage's check, for every dataset plugin: the duplicate summary of ``data``.

    File datasets have applied their ``duplicates`` policy and stored a report in
    ``info["duplicates"]``; that one is used. Any other dataset (procedural phantoms, npz
    files) is audited here. Cross-split duplicates that remain are a **warning**, not an
    error: the runner cannot regroup a split it did not make, a published split (MedMNIST's)
    is the one everybody compares on, and a file dataset only keeps them when the user chose
    ``duplicates = "report"``. The warning names the images, is kept with the prepare unit
    (shown again when it is reused), and the counts go into results.json, where a reader of
    a board sees them next to the scores.
    """
    stored = data.info.get("duplicates")
    report = (DuplicateReport.from_json(stored) if isinstance(stored, Mapping)
              and "cluster_list" in stored else audit(data.splits))
    if report.cross_split and stored is None:
        totals = report.totals()
        warnings.warn(
            f"{len(report.cross_split)} cluster(s) of duplicate images straddle splits "
            f"({totals['exact_across']} exact, {totals['near_across']} near pairs across "
            f"splits): held-out scores may reward copying\n{report.describe_leaks()}",
            UserWarning, stacklevel=2,
        )
    return report.summary()
