"""CLI glue for the shared engine options: ``--size``/``--precision`` parsing and profile notes on
stderr around the library's ``build_segmenter``, and the pipeline part of a profile."""

from __future__ import annotations

from collections.abc import Callable

from ..infer import build
from ..infer.segmenter import Segmenter
from ..pipeline.job import pipeline_cfg as pipeline_cfg  # the profile's pipeline part, for run and bench
from ..profiles import Settings
from . import console
from .options import precision_arg, size_arg


def _note_printer(explain_auto: bool) -> Callable[[str], None]:
    """Fallbacks are warnings; ``auto:`` lines (what an automatic choice chose, and why) are shown
    when the command line asked for one (--precision auto), not for the profile's own."""
    def show(note: str) -> None:
        if not note.startswith("auto:"):
            console.warn(note)
        elif explain_auto:
            console.log(note)

    return show


def build_segmenter(
    model: str,
    *,
    profile: str = "auto",
    size: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    half: bool | None = None,
    batch: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    post_workers: int | None = None,
    backend: str | None = None,
    exact_labels: bool = False,
    classes_as: str | None = None,
    quiet: bool = False,
) -> tuple[Segmenter, Settings]:
    """:func:`lightseg_cli.infer.build.build_segmenter` from command-line values (``half``: the
    older spelling of ``precision``)."""
    precision = precision_arg(precision, half)
    return build.build_segmenter(
        model, profile=profile, size=size_arg(size), device=device, precision=precision, batch=batch,
        workers=workers, threads=threads, post_workers=post_workers, backend=backend, exact_labels=exact_labels,
        classes_as=classes_as, on_note=None if quiet else _note_printer(precision == "auto"),
    )
