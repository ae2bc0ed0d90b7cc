"""turkey-pipeline's ML library: plain Python, never imports Airflow.

Importing ``ml`` is cheap (no TensorFlow). Once Keras is imported -- before or after ``import ml`` --
our custom ``AttentionPooling`` layer is registered, so ``keras.models.load_model("model.keras")``
works on a published model without ``custom_objects``.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys

log = logging.getLogger(__name__)

__version__ = "0.1.0"


def _register_layers() -> None:
    import ml.model  # noqa: F401  (registration happens at import)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Registers our layers right after the top-level ``keras`` package finishes importing."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # one shot: find the real spec without recursing into ourselves
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _register_layers()

        loader.exec_module = exec_and_register
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _KerasImportHook())
