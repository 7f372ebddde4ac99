"""``build_segmenter``: a :class:`Segmenter` set up the way a hardware profile says, with the
profile's choices resolved against this machine (what ``run``, ``eval`` and ``bench`` use)."""

from __future__ import annotations

from collections.abc import Callable

from .. import profiles
from ..errors import UsageError
from ..profiles import Settings
from ..tuning import tune_allocator
from ..zoo import get_cfg
from ..zoo.classmap import classes_as as map_classes
from . import precision as precisions
from .preprocess import fit_size
from .segmenter import Segmenter


def build_segmenter(
    model: str,
    *,
    profile: str = "auto",
    size: tuple[int, int] | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    post_workers: int | None = None,
    backend: str | None = None,
    exact_labels: bool = False,
    classes_as: str | None = None,
    on_note: Callable[[str], None] | None = None,
) -> tuple[Segmenter, Settings]:
    """Resolve ``profile`` (``auto`` detects one) with the non-None overrides, set the process's
    allocator as the profile says (``tuning.tune_allocator``), then build the model.

    Args:
        model: zoo name (short forms allowed) or a checkpoint written by ``lightseg train``.
        size: network input ``(w, h)``; default the profile's size for the model, else its native one.
        classes_as: predict another label space through a class map (see ``zoo.classmap``).
        on_note: receives each line the profile resolution has to say (fallbacks, the ``auto``
            picks: profile, backend, precision) before the model is built.

    Returns:
        ``(segmenter, settings)``; impossible choices (a CUDA device on a machine without one, ...)
        raise :class:`UsageError`.
    """
    settings = profiles.resolve(profile, device=device, precision=precision, batch=batch, backend=backend,
                                workers=workers, threads=threads, postprocess_workers=post_workers)
    cfg = get_cfg(model)
    if classes_as:
        cfg = map_classes(cfg, classes_as)
    settings = profiles.for_model(settings, cfg.arch, cfg.dataset.name)
    net_size = fit_size(size or profiles.size_for(settings, cfg.arch, cfg.dataset.name) or cfg.input_size,
                        cfg.size_divisor)
    settings = precisions.resolve(settings, cfg, net_size)
    if on_note:
        for note in settings.notes:
            on_note(note)
    tune_allocator(settings.allocator)
    try:
        seg = Segmenter(cfg, size=net_size, device=settings.device, precision=settings.precision,
                        backend=settings.backend, exact_labels=exact_labels)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return seg, settings
