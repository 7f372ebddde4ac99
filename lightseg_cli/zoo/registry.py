"""The model zoo: architectures and named models, and the one place model names are parsed.

Names follow ``<arch>[-<variant>]-<dataset>[-<WxH>]``, e.g. ``espnetv2-s2.0-cityscapes``,
``espnet-q5-cityscapes``, ``lpsnet-m-camvid``. :func:`resolve_name` accepts the usual short
forms: ``city`` for ``cityscapes``, ``pascal`` for ``voc``, ``s2`` for ``s2.0``, ``_`` for ``-``,
any case, and a prefix that names exactly one model (``lpsnet-m``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from torch import nn

from ..errors import UsageError
from .classmap import ClassMapped, get_class_map, source_cfg
from .pretrained import ModelCfg

ArchBuilder = Callable[[ModelCfg], nn.Module]

_ARCHS: dict[str, ArchBuilder] = {}
_MODELS: dict[str, ModelCfg] = {}


class UnknownModelError(UsageError, ValueError):
    """A model name that is not in the zoo, or matches several entries (a usage error, exit 2; still a
    ValueError for callers that caught it as one)."""


def register_arch(name: str) -> Callable[[ArchBuilder], ArchBuilder]:
    """Decorator: file a builder ``fn(cfg) -> nn.Module`` under an architecture name."""

    def wrap(fn: ArchBuilder) -> ArchBuilder:
        if name in _ARCHS:
            raise ValueError(f"architecture {name!r} registered twice")
        _ARCHS[name] = fn
        return fn

    return wrap


def register_model(cfg: ModelCfg) -> ModelCfg:
    """Add a zoo entry; names must be unique and already in canonical form."""
    if cfg.name in _MODELS:
        raise ValueError(f"model {cfg.name!r} registered twice")
    if _canonical(cfg.name) != cfg.name:
        raise ValueError(f"model name {cfg.name!r} is not canonical ({_canonical(cfg.name)!r})")
    _MODELS[cfg.name] = cfg
    return cfg


def _canonical(name: str) -> str:
    s = name.strip().lower().replace("_", "-")
    s = re.sub(r"-city(?=-|$)", "-cityscapes", s)
    s = re.sub(r"-pascal(?=-|$)", "-voc", s)
    s = re.sub(r"-s(\d)(?=-|$)", r"-s\1.0", s)
    return s


def resolve_name(name: str) -> str:
    """Return the canonical zoo name for ``name`` or raise :class:`UnknownModelError`."""
    s = _canonical(name)
    if s in _MODELS:
        return s
    matches = [m for m in _MODELS if m.startswith(s + "-")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownModelError(f"model name {name!r} is ambiguous: use one of {', '.join(sorted(matches))}")
    close = [m for m in _MODELS if s.split("-")[0] in m][:6]
    hint = f"; similar: {', '.join(close)}" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (see `lightseg models`)")


def zoo_entry(name: str) -> ModelCfg:
    """The zoo entry for a (possibly short) model name (``get_cfg`` also accepts checkpoint files)."""
    return _MODELS[resolve_name(name)]


def list_models(pattern: str = "*") -> list[ModelCfg]:
    """Zoo entries whose name matches the fnmatch ``pattern``, in registration order."""
    return [cfg for name, cfg in _MODELS.items() if fnmatch.fnmatch(name, pattern)]


def build_model(cfg: ModelCfg) -> nn.Module:
    """An untrained network of the entry's architecture and configuration (followed by its class
    map, if it has one)."""
    try:
        builder = _ARCHS[cfg.arch]
    except KeyError:
        raise UnknownModelError(f"model {cfg.name!r}: unknown architecture {cfg.arch!r}") from None
    if cfg.class_map:
        return ClassMapped(builder(source_cfg(cfg)), get_class_map(cfg.class_map))
    return builder(cfg)
