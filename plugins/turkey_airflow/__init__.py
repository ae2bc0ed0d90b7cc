"""Airflow glue for turkey-pipeline: asset definitions and task bodies. The ML lives in ``ml``."""
