"""Splits of a labelled set by sequence, for validation on streets no training image comes from.

CamVid's file names carry their sequence (``0001TP_006690.png``, ``0006R0_f01230.png``,
``0016E5_07959.png``, ``Seq05VD_f00000.png``): the part before the first underscore. Frames of one
sequence are near-duplicates, so a model scored on frames of a sequence it trained on is flattered;
a leave-one-sequence-out split trains on the other sequences and scores on the one left out.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DataError
from ..io import atomic
from .labelled import Sample


def sequence_of(path: Path) -> str:
    """The sequence a frame belongs to: its file name up to the first underscore."""
    return path.stem.split("_", 1)[0]


def sequences(samples: Iterable[Sample]) -> dict[str, int]:
    """Frames per sequence, in order of first appearance."""
    return dict(Counter(sequence_of(s.image) for s in samples))


def split_by_sequence(samples: Sequence[Sample], holdout: Iterable[str]) -> tuple[list[Sample], list[Sample]]:
    """``(rest, held_out)``: the samples of the other sequences, and those of ``holdout``."""
    held = set(holdout)
    unknown = held - set(sequences(samples))
    if unknown:
        raise DataError(f"no frames of sequence(s) {', '.join(sorted(unknown))}; "
                        f"found: {', '.join(sequences(samples))}")
    rest = [s for s in samples if sequence_of(s.image) not in held]
    if not rest:
        raise DataError("holding out every sequence leaves nothing to train on")
    return rest, [s for s in samples if sequence_of(s.image) in held]


def write_list(samples: Iterable[Sample], path: Path) -> Path:
    """Write an ``image label`` list file with paths relative to its folder (readable by ``load_samples``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    lines = [f"{os.path.relpath(s.image.resolve(), base)} {os.path.relpath(s.label.resolve(), base)}"
             for s in samples]
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path
