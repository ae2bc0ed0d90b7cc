"""Scores of one input file by one model: validated with the test-file rules, padded and predicted in chunks,
written as ``vid_id,is_turkey`` (probabilities, input order) whole or not at all.

Files larger than :data:`STREAM_ABOVE` are read by the streaming reader, so the file's text is never held
whole; frames become padded arrays and predictions one chunk of :data:`CHUNK` records at a time, so memory
stays bounded by the compact uint8 frames (``python -m bench.scoring`` measures a 100x batch).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from ml.data import pad_frames
from ml.errors import TurkeyError
from ml.fsutil import atomic_output

log = logging.getLogger(__name__)

CHUNK = 8192  # records padded and predicted together
STREAM_ABOVE = 64 << 20  # bytes: larger files are parsed by the streaming reader


def load_model(model_path):
    """The model at ``model_path``, to ``predict`` with: its NumPy forward pass when it has the seed
    architecture (:mod:`ml.scoring.forward`: no TensorFlow start-up), else the Keras model (uncompiled:
    scoring never trains). A TurkeyError naming the file when it is missing or cannot be loaded."""
    from ml.scoring import forward

    model_path = Path(model_path)
    if not model_path.is_file():
        raise TurkeyError(f"{model_path}: no such model file")
    try:
        model = forward.load(model_path)
    except Exception as exc:  # noqa: BLE001 - not a readable .keras zip: Keras says what is wrong below
        log.info("%s: not read by the NumPy forward pass (%s); loading it with Keras", model_path, exc)
        model = None
    if model is not None:
        return model
    from ml.tflog import import_tensorflow

    import_tensorflow()
    import keras

    import ml.model  # noqa: F401  (registers AttentionPooling, whatever imported Keras first)

    try:
        return keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad model file for the user
        raise TurkeyError(f"{model_path}: cannot load the model ({type(exc).__name__}: {exc})") from None


def validated_records(input_json, report_dir=None):
    """The records of ``input_json`` after the test-file rules (DataError, one line, when one is broken)."""
    from ml.validation import validate_file

    out = validate_file(input_json, "test", report_dir=report_dir, min_records=1, max_in_memory=STREAM_ABOVE)
    if not out.ok:
        out.raise_for_failures()
    for warning in out.warnings:
        log.warning("%s: %s", input_json, warning)
    return out.records


def write_scores(model, records, output_csv) -> tuple[np.ndarray, np.ndarray]:
    """Predict ``records`` (:class:`ml.data.Records`) chunk by chunk into ``output_csv``; returns the
    probabilities (float64) and the records' mean-pooled features (:func:`ml.scoring.skew.pooled`)."""
    from ml.scoring.skew import pooled

    offsets = np.concatenate([[0], np.cumsum(records.lengths, dtype=np.int64)])
    probs = np.empty(len(records), dtype=np.float64)
    features = np.empty((len(records), records.frames.shape[1]), dtype=np.float32)
    with atomic_output(output_csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["vid_id", "is_turkey"])
        for start in range(0, len(records), CHUNK):
            stop = min(start + CHUNK, len(records))
            frames = records.frames[offsets[start]:offsets[stop]]
            x = pad_frames(frames, records.lengths[start:stop])
            p = model.predict(x, batch_size=1024, verbose=0).reshape(-1).astype(np.float64)
            probs[start:stop] = p
            features[start:stop] = pooled(x, records.lengths[start:stop])
            w.writerows(zip(records.ids[start:stop], (f"{v:.6f}" for v in p), strict=True))
    return probs, features


def score_file(model_path, input_json, output_csv) -> int:
    """``turkey score``: validate ``input_json`` as a test file, score it with the model at ``model_path``
    into ``output_csv`` (atomic); returns the rows."""
    model = load_model(model_path)
    records = validated_records(input_json)
    write_scores(model, records, output_csv)
    return len(records)
