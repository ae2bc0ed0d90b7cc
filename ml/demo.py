"""Synthetic demo data in the Kaggle "Don't call me turkey!" format.

No copy of the real data ships with the project, so ``make run`` and the tests use this generator. It
mimics the parts of the real data that matter to the pipeline:

- 1-10 frames per clip (one per second), 128 quantized values in 0-255 per frame; ~20% short clips;
- ~40% positives; the turkey "signal" lives in only a few frames of a positive clip (so pooling over
  time with attention matters) and is a non-linear pattern (so a linear model on mean-pooled frames,
  our baseline, cannot capture all of it);
- background that varies per clip, and a little label noise.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

from ml.fsutil import atomic_output

_ALPHABET = np.array(list(string.ascii_letters + string.digits + "-_"))


def _vid_ids(rng: np.random.Generator, n: int, taken: set) -> list[str]:
    out = []
    while len(out) < n:
        vid = "".join(rng.choice(_ALPHABET, 11))
        if vid not in taken:
            taken.add(vid)
            out.append(vid)
    return out


def make_records(n: int, rng: np.random.Generator, with_labels: bool, taken: set, label_noise: float = 0.04):
    """Return a list of Kaggle-style record dicts."""
    # Fixed "world" directions (shared by train and test: derived from a fixed seed, not from rng).
    world = np.random.default_rng(20191125)
    turkey_a = world.normal(0, 1, 128)
    turkey_b = world.normal(0, 1, 128)
    background_dirs = world.normal(0, 1, (6, 128))

    ids = _vid_ids(rng, n, taken)
    y = (rng.random(n) < 0.4).astype(int)
    records = []
    for i in range(n):
        n_frames = 10 if rng.random() > 0.2 else int(rng.integers(1, 10))
        base = 128 + 18 * rng.normal(0, 1, 6) @ background_dirs / np.sqrt(6)
        x = base + rng.normal(0, 14, (n_frames, 128))
        if y[i]:
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


def generate(out_dir, train_size: int = 1195, test_size: int = 1196, seed: int = 0) -> dict:
    """Write ``train.json`` and ``test.json`` into ``out_dir``; return their paths."""
    rng = np.random.default_rng(seed)
    taken: set = set()
    out = Path(out_dir)
    train = write_json(make_records(train_size, rng, True, taken), out / "train.json")
    test = write_json(make_records(test_size, rng, False, taken), out / "test.json")
    return {"train": train, "test": test}
