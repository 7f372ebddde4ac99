"""The model zoo: named models with their weights, label spaces and preprocessing."""

from . import entries as _entries  # noqa: F401  (registers the architectures and named models)
from .factory import create_model
from .local import get_cfg
from .pretrained import Dataset, ModelCfg, Preprocess
from .registry import UnknownModelError, list_models, resolve_name

__all__ = [
    "Dataset", "ModelCfg", "Preprocess", "UnknownModelError",
    "create_model", "get_cfg", "list_models", "resolve_name",
]
