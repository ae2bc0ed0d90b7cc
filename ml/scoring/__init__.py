"""Batch scoring: the champion scores every new unlabelled batch, as it is, and re-scores the recent ones
when the champion changes. Never trains.

- :mod:`ml.scoring.job` -- one scoring run: which batches, scored by the champion loaded once;
- :mod:`ml.scoring.predict` -- one file by one model: test-file rules, chunked prediction, the CSV;
- :mod:`ml.scoring.skew` -- training-serving skew: the training profile and the batch's PSI against it;
- :mod:`ml.scoring.store` -- ``scores/<batch>/`` in the registry and publishing under the registry lock.
"""
