"""Scoring a test file with a published model into a Kaggle submission CSV."""

from __future__ import annotations

import logging
from pathlib import Path

from ml.data import pad_frames
from ml.errors import TurkeyError

log = logging.getLogger(__name__)


def score_file(model_path, input_json, output_csv) -> int:
    """Validate ``input_json`` as a test file, score it, write ``output_csv`` atomically; return rows."""
    from ml.pipeline import write_submission
    from ml.validation import validate_file

    model_path = Path(model_path)
    if not model_path.is_file():
        raise TurkeyError(f"{model_path}: no such model file")
    out = validate_file(input_json, "test", min_records=1)
    if not out.ok:
        out.raise_for_failures()
    rec = out.records
    x = pad_frames(rec.frames, rec.lengths)
    import keras

    from ml.train import predict

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad model file for the user
        raise TurkeyError(f"{model_path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    write_submission(rec.ids, predict(model, x), output_csv)
    return len(rec)
