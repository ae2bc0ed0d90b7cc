"""The check frame: the scalar, one-row-per-record table the expectation suites run on.

Built from :meth:`ml.data.Records.summary_frame`. A value that a rule cannot judge because an earlier rule
already failed is null (``None``/``NaN``), and GX skips nulls, so each broken record is reported once, by
the most specific rule (a record without ``audio_embedding`` breaks ``fields.required``, not also
``embedding.list``). The frame's index is the record index.

Columns (all vectorised; computing the frame for 120k records takes milliseconds):

=================  ==========================================================================================
``vid_id``         the id where it is a valid non-empty string, else null (uniqueness is checked on this)
``missing_fields`` comma-joined required fields the record lacks ("" when none)
``extra_fields``   comma-joined unknown fields ("" when none)
``vid_id_ok``      True / False; null when the field is missing
``start_ok``       True when start is a finite number (not a string, bool, null); null when missing
``end_ok``         the same for end
``start``/``end``  seconds; null unless both are finite numbers
``duration``       end - start; null unless both are finite numbers
``emb_is_list``    audio_embedding is a JSON list; null when missing
``n_frames``       number of frames; null unless the embedding is a list
``row_len_min``    shortest frame (-1 when a frame is not a list); null unless there is at least one frame
``row_len_max``    longest frame; same
``n_bad_values``   values that are not integers (floats, strings, booleans, nulls); same
``value_min``      smallest integer value; same
``value_max``      largest integer value; same
``has_label``      the record has ``is_turkey``
``label_ok``       ``is_turkey`` is the integer 0 or 1; null when absent
``label``          0.0 / 1.0 where label_ok, else null
=================  ==========================================================================================
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ml.data import N_FEATURES  # noqa: F401  (documented width, used by the suites)

log = logging.getLogger(__name__)

START = "start_time_seconds_youtube_clip"
END = "end_time_seconds_youtube_clip"
EMB = "audio_embedding"


def _lacks(missing: np.ndarray) -> dict[str, np.ndarray]:
    """Per required field, a boolean array: the record lacks it (parsed from ``missing_fields``)."""
    out = {f: np.zeros(len(missing), dtype=bool) for f in ("vid_id", START, END, EMB)}
    for i in np.flatnonzero(missing != ""):  # only the (rare) records that lack something
        for f in str(missing[i]).split(","):
            if f in out:
                out[f][i] = True
    return out


def _tri(ok: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Object array of True / False, None where the field is absent."""
    out = np.asarray(ok, dtype=bool).astype(object)
    out[~present] = None
    return out


def utf8_ok(ids: np.ndarray) -> np.ndarray:
    """False for strings holding lone surrogates (JSON allows "\\ud800"; UTF-8 reports cannot carry them)."""
    out = np.ones(len(ids), dtype=bool)
    for i, v in enumerate(ids):
        if type(v) is str and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                out[i] = False
    return out


def check_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Derive the check frame (see module docstring) from a ``Records.summary_frame()``."""
    s = summary
    n = len(s)
    missing = s["missing_fields"].astype(object).fillna("").to_numpy(dtype=object)
    lacks = _lacks(missing)
    has_vid, has_start, has_end, has_emb = (~lacks[f] for f in ("vid_id", START, END, EMB))

    ids = s["vid_id"].to_numpy(dtype=object)
    vid_ok = s["vid_id_ok"].to_numpy(dtype=bool) & utf8_ok(ids)
    start = s["start"].to_numpy(dtype=float)
    end = s["end"].to_numpy(dtype=float)
    start_ok = np.isfinite(start)
    end_ok = np.isfinite(end)
    both = start_ok & end_ok

    n_frames = s["n_frames"].to_numpy(dtype=float)
    is_list = s["emb_is_list"].to_numpy(dtype=bool) & has_emb
    has_frames = is_list & (n_frames >= 1)

    def only(values, mask) -> np.ndarray:
        out = np.asarray(values, dtype=float).copy()
        out[~mask] = np.nan
        return out

    has_label = s["has_label"].to_numpy(dtype=bool)
    label_ok = s["label_ok"].to_numpy(dtype=bool)

    frame = pd.DataFrame(
        {
            "vid_id": np.where(has_vid & vid_ok, ids, None),
            "missing_fields": missing,
            "extra_fields": s["extra_fields"].astype(object).fillna("").to_numpy(dtype=object),
            "vid_id_ok": _tri(vid_ok, has_vid),
            "start_ok": _tri(start_ok, has_start),
            "end_ok": _tri(end_ok, has_end),
            "start": only(start, both),
            "end": only(end, both),
            "duration": only(end - start, both),
            "emb_is_list": _tri(is_list, has_emb),
            "n_frames": only(n_frames, is_list),
            "row_len_min": only(s["row_len_min"], has_frames),
            "row_len_max": only(s["row_len_max"], has_frames),
            "n_bad_values": only(s["n_bad_values"], has_frames),
            "value_min": only(s["value_min"], has_frames),
            "value_max": only(s["value_max"], has_frames),
            "has_label": has_label,
            "label_ok": _tri(label_ok, has_label),
            "label": only(s["label"], label_ok),
        },
        index=pd.RangeIndex(n) if "index" not in s else pd.Index(s["index"].to_numpy(dtype=np.int64)),
    )
    return frame
