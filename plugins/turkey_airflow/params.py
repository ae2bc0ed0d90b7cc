"""The DAG's ``Param``\\ s, generated from :class:`ml.config.RunConfig`: one per field, with its default,
JSON-schema type and bounds, description and trigger-form section. Nothing is restated here, so the form,
the CLI and the library cannot disagree on a default or a bound."""

from __future__ import annotations

import logging

from airflow.sdk import Param

from ml.config import RunConfig

log = logging.getLogger(__name__)

#: Pydantic's JSON-schema keywords that Airflow's form also understands, kept as they are.
_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "enum", "items")


def param_schema(field_schema: dict) -> dict:
    """A Param's schema from a field's JSON schema: ``anyOf [X, null]`` becomes X with ``type: [null, X]``
    (what the trigger form renders as an optional field); pydantic's ``title`` and ``default`` go."""
    options = field_schema.get("anyOf")
    if options:
        (inner,) = [o for o in options if o.get("type") != "null"]
        schema = {k: inner[k] for k in _KEYWORDS if k in inner}
        schema["type"] = ["null", inner["type"]]
    else:
        schema = {k: field_schema[k] for k in _KEYWORDS if k in field_schema}
        schema["type"] = field_schema.get("type", "string")
    return schema


def dag_params(model: type[RunConfig] = RunConfig) -> dict[str, Param]:
    """``{field: Param}`` for every field of ``model``, in field order."""
    properties = model.model_json_schema()["properties"]
    out = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra or {}
        out[name] = Param(field.default, description=field.description, section=extra.get("section"),
                          **param_schema(properties[name]))
    return out
