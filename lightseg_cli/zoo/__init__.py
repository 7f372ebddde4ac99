"""The model zoo: named models with their weights, label spaces and preprocessing."""

from .. import models as _models  # noqa: F401  (registers the architectures and entries)
from .factory import create_model
from .pretrained import Dataset, ModelCfg, Preprocess
from .registry import UnknownModelError, get_cfg, list_models, resolve_name

__all__ = [
    "Dataset", "ModelCfg", "Preprocess", "UnknownModelError",
    "create_model", "get_cfg", "list_models", "resolve_name",
]
