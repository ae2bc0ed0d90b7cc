"""Supervisors and helpers behind the Makefile targets (``make run``, ``make ui``, ``make test-distributed``);
run from the repository root (``python -m scripts.<module>``) or as files."""
