"""Synthetic demo data in the Kaggle "Don't call me turkey!" format.

No copy of the real data ships with the project, so ``make run`` and the tests use this generator. Two
families of labels (``family=``), same record format:

- ``presence`` (the default, what ``make run`` uses): the turkey "signal" lives in only a few frames of
  a positive clip (so pooling over time with attention matters) and is a non-linear pattern (so a linear
  model on mean-pooled frames, our baseline, cannot capture all of it).
- ``temporal``: every clip holds one "wind-up" frame and one "gobble" frame at random positions; the
  clip is a turkey when the wind-up comes *before* the gobble. Both classes contain the same frames, so
  anything that pools over time without order (the mean-pooled logistic baseline) scores AUC ~0.5; a
  recurrent model can learn it. Clips have 2-10 frames (the order needs two).

Both mimic the parts of the real data that matter to the pipeline: 1-10 frames per clip (one per
second), 128 quantized values in 0-255 per frame, ~20% short clips, ~40% positives, background that
varies per clip, and 4% label noise.
"""

from __future__ import annotations

import json
import logging
import string
from pathlib import Path

import numpy as np

from ml.fsutil import atomic_output

log = logging.getLogger(__name__)

_ALPHABET = np.array(list(string.ascii_letters + string.digits + "-_"))


def _vid_ids(rng: np.random.Generator, n: int, taken: set) -> list[str]:
    out = []
    while len(out) < n:
        vid = "".join(rng.choice(_ALPHABET, 11))
        if vid not in taken:
            taken.add(vid)
            out.append(vid)
    return out


FAMILIES = ("presence", "temporal")
DEFAULT_FAMILY = "presence"


def check_family(family: str) -> str:
    """``family`` if it is one of :data:`FAMILIES`, else ValueError naming the choices."""
    if family not in FAMILIES:
        raise ValueError(f"unknown demo family {family!r}; choose from {', '.join(FAMILIES)}")
    return family


def make_records(
    n: int,
    rng: np.random.Generator,
    with_labels: bool,
    taken: set,
    label_noise: float = 0.04,
    family: str = DEFAULT_FAMILY,
):
    """Return a list of Kaggle-style record dicts of the given label ``family`` (see the module doc)."""
    check_family(family)
    # Fixed "world" directions (shared by train and test: derived from a fixed seed, not from rng).
    world = np.random.default_rng(20191125)
    turkey_a = world.normal(0, 1, 128)
    turkey_b = world.normal(0, 1, 128)
    background_dirs = world.normal(0, 1, (6, 128))
    # The temporal family's two events (own fixed seed, so the presence family's draws stay as they were).
    events = np.random.default_rng(20191126).normal(0, 1, (2, 128))

    ids = _vid_ids(rng, n, taken)
    y = (rng.random(n) < 0.4).astype(int)
    records = []
    for i in range(n):
        n_frames = 10 if rng.random() > 0.2 else int(rng.integers(1, 10))
        if family == "temporal":
            n_frames = max(n_frames, 2)
        base = 128 + 18 * rng.normal(0, 1, 6) @ background_dirs / np.sqrt(6)
        x = base + rng.normal(0, 14, (n_frames, 128))
        if family == "temporal":
            first, second = np.sort(rng.choice(n_frames, 2, replace=False))
            wind_up, gobble = (first, second) if y[i] else (second, first)
            x[wind_up] += 14 * events[0]
            x[gobble] += 14 * events[1]
        elif y[i]:
            k = int(rng.integers(1, min(3, n_frames) + 1))  # the call lasts 1-3 seconds
            where = rng.choice(n_frames, k, replace=False)
            for f in where:
                # A gobble is either pattern a or pattern b with a random sign mixture: its mean over
                # clips is weak, its presence in a frame is strong.
                s = rng.choice([-1.0, 1.0])
                x[f] += 22 * (turkey_a if rng.random() < 0.5 else s * turkey_b) / np.sqrt(2) + 10 * turkey_a / 4
        frames = np.clip(np.rint(x), 0, 255).astype(int)
        start = int(rng.integers(0, 600))
        rec = {
            "vid_id": ids[i],
            "start_time_seconds_youtube_clip": start,
            "end_time_seconds_youtube_clip": start + 10,
            "audio_embedding": frames.tolist(),
        }
        if with_labels:
            label = int(y[i])
            if rng.random() < label_noise:
                label = 1 - label
            rec["is_turkey"] = label
        records.append(rec)
    return records


def write_json(records, path) -> str:
    """Write records as a JSON list, atomically (temp name, then rename)."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write("[")
        for i, rec in enumerate(records):
            if i:
                fh.write(",\n")
            json.dump(rec, fh, separators=(",", ":"))
        fh.write("]\n")
    return str(path)


def generate(
    out_dir, train_size: int = 1195, test_size: int = 1196, seed: int = 0, family: str = DEFAULT_FAMILY
) -> dict:
    """Write ``train.json`` and ``test.json`` of one label ``family`` into ``out_dir``; return their paths."""
    check_family(family)
    rng = np.random.default_rng(seed)
    taken: set = set()
    out = Path(out_dir)
    train = write_json(make_records(train_size, rng, True, taken, family=family), out / "train.json")
    test = write_json(make_records(test_size, rng, False, taken, family=family), out / "test.json")
    return {"train": train, "test": test}


def generate_batch(path, size: int = 300, seed: int = 1, family: str = DEFAULT_FAMILY) -> str:
    """One unlabelled batch file (the test-file schema) of ``size`` new clips at ``path``."""
    check_family(family)
    return write_json(make_records(size, np.random.default_rng(seed), False, set(), family=family), Path(path))
