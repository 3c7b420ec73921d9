"""The one seeded split of prepared data.

A clip's split (or a group's: a track, an artist) is fixed by a hash of the seed and
its key, so it does not depend on which other files exist or in what order they were
listed, and is the same on every machine. Adapters whose dataset has no official split,
`prepare folder` without split labels, and `prepare mirdata` all split here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

SPLITS = ("train", "valid", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def hash_unit(key: str, seed: int | str = 0) -> float:
    """A number in [0, 1) fixed by `key` and `seed`."""
    digest = hashlib.sha256(f"split-{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """`fractions` as a (train, valid, test) triple, or a one-line ValueError."""
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1 (train/valid/test), got {tuple(fractions)}"
        )
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def parse_fractions(text: str) -> tuple[float, float, float]:
    """`"80/10/10"` or `"0.8/0.1/0.1"` (or `100/0/0`, all for training) as fractions."""
    try:
        parts = [float(p) for p in text.replace(",", "/").split("/")]
    except ValueError:
        raise ValueError(f"--split {text!r}: expected TRAIN/VALID/TEST, e.g. 80/10/10 or 100/0/0") from None
    total = sum(parts)
    if len(parts) != 3 or min(parts) < 0 or total <= 0:
        raise ValueError(f"--split {text!r}: expected three non-negative numbers, e.g. 80/10/10 or 100/0/0")
    return check_fractions([p / total for p in parts])


def assign_split(key: str, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """The seeded split of one clip: its hash cut at the cumulative fractions."""
    u = hash_unit(key, seed)
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def grouped_split(groups: Iterable[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each distinct group to one split, with exact split sizes (in groups).

    Groups are ordered by their seeded hash and cut at the cumulative fractions, so every
    clip of a group lands in one split: captions of one song, or songs of one artist,
    never straddle train and test.
    """
    distinct = sorted(set(groups), key=lambda g: (hash_unit(g, seed), g))
    total = sum(fractions.values())
    out: dict[str, str] = {}
    start, acc = 0, 0.0
    names = list(fractions)
    for i, split in enumerate(names):
        acc += fractions[split]
        end = len(distinct) if i == len(names) - 1 else round(len(distinct) * acc / total)
        for g in distinct[start:end]:
            out[g] = split
        start = end
    return out


def fixed_bucket(key: str, buckets: int) -> int:
    """An unseeded bucket in [0, buckets): SHA-1 of `key`, as published splits made by
    hashing artist names (emoMusic and MTG key in Castellon et al. 2021) define them.
    Only for reproducing such a split exactly; new splits use the seeded ones above."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % buckets
