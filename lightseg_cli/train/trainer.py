"""``lightseg train``: train or fine-tune any zoo architecture on a labelled set.

Recipe: random scale / crop / flip / colour jitter (``augment.py``), optionally CutMix within each
batch (``mix.py``), cross-entropy with an ignore label (plain, OHEM or class-weighted), AdamW or SGD
with linear warm-up then cosine or poly decay per step, mixed precision on CUDA. With a teacher, its
logits are distilled too, also on unlabelled frames (``unlabelled.py``), whose label is all ignore;
with a hint teacher, a pre-trained backbone's features are distilled into the student's (``hints.py``).
Every epoch writes ``last.pth`` (everything needed to continue exactly: weights, optimiser, epoch,
RNG state, best score); every ``val_every`` epochs the model is scored on the validation set and
``best.pth`` keeps the best one. ``metrics.jsonl`` logs each epoch. ``best.pth`` and ``last.pth``
carry a ``meta`` block, so ``lightseg run --model RUN/best.pth`` and ``lightseg eval --model
RUN/best.pth`` work directly.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..data.labelled import load_samples, read_label
from ..errors import UsageError
from ..evaluate import evaluate
from ..infer.preprocess import Normalizer
from ..infer.segmenter import Segmenter, resolve_device
from ..io import atomic
from ..io.images import read_rgb
from ..zoo import ModelCfg, get_cfg
from ..zoo.backbones import initial_weights
from ..zoo.classmap import classes_as, weight_module
from ..zoo.pretrained import Dataset
from ..zoo.registry import build_model
from .augment import AugmentCfg, augment
from .distill import Teacher
from .hints import Hints
from .losses import SegLoss, class_weights, distillation_loss
from .mix import MixBatch, cutmix
from .unlabelled import Unlabelled, load_unlabelled


@dataclass
class TrainCfg:
    model: str
    data: str | tuple[str, ...]  # one training set, or several read as one (e.g. train.txt and val.txt)
    val: str | None
    out: str
    epochs: int = 200
    batch: int = 8
    size: tuple[int, int] = (480, 360)  # training crop (w, h)
    input_size: tuple[int, int] | None = None  # network input for a whole image (w, h); None: the crop size
    lr: float = 3e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_epochs: float = 3.0
    loss: str = "ohem"
    scale: tuple[float, float] = (0.5, 2.0)
    jitter: float = 0.3
    ignore_index: int = 255
    num_classes: int | None = None
    class_names: list[str] | None = None
    classes_as: str | None = None  # fine-tune through the class map from the model's label space to this one
    pretrained: bool = True
    init: str | None = None  # start from this checkpoint's weights (new optimiser and schedule)
    teacher: tuple[str, ...] = ()  # models whose (averaged) logits on the training images are distilled
    teacher_weights: tuple[float, ...] | None = None  # an ensemble's weights, one per teacher (None: equal)
    unlabelled: tuple[str, ...] = ()  # SOURCEs of frames with no labels: distilled, not cross-entropy
    unlabelled_stride: int | None = None  # every Nth video frame; None: a few hundred frames a video at most
    teacher_scales: tuple[float, ...] = (1.0,)  # teacher input sizes, as multiples of its own
    teacher_flip: bool = False  # also average the teacher over mirrored images
    kd_weight: float = 1.0
    kd_temperature: float = 1.0
    hint_teacher: str | None = None  # zoo entry whose pre-trained backbone features the student's learn (hints.py)
    hint_weight: float = 1.0
    cutmix: float = 0.0  # probability that an image gets a rectangle of another one of its batch (mix.py)
    encoder_lr: float = 1.0  # the pre-trained encoder's learning rate as a fraction of lr
    val_every: int = 5
    device: str | None = None
    seed: int = 0


class StepBatch(NamedTuple):
    """What one optimiser step trains on, on the training device."""

    x: torch.Tensor  # normalised crops, channels-last
    y: torch.Tensor  # labels (ignore where none)
    soft: torch.Tensor | None  # teacher logits (None without a teacher)
    mask: torch.Tensor  # where the teacher is distilled
    hint_x: torch.Tensor | None  # the hint teacher's input (None without one)


@dataclass(frozen=True)
class StepInfo:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    lr: float


@dataclass(frozen=True)
class EpochInfo:
    epoch: int
    epochs: int
    loss: float
    lr: float
    seconds: float
    val_miou: float | None
    best_miou: float | None


def _train_dataset(cfg: TrainCfg, base: ModelCfg) -> Dataset:
    n = cfg.num_classes or base.dataset.scored
    if cfg.class_names:
        if len(cfg.class_names) != n:
            raise UsageError(f"--class-names lists {len(cfg.class_names)} names for {n} classes")
        names = tuple(cfg.class_names)
    elif n <= len(base.dataset.classes):
        names = base.dataset.classes[:n]
    else:
        names = tuple(f"class{i}" for i in range(n))
    palette = base.dataset.palette[:n] if n <= len(base.dataset.palette) else tuple(
        tuple(int(c) for c in np.random.default_rng(i).integers(0, 256, 3)) for i in range(n)
    )
    return Dataset(name=base.dataset.name, classes=names, palette=palette, scored=n)  # type: ignore[arg-type]


def _lr_at(step: int, total: int, warmup: int, cfg: TrainCfg) -> float:
    if step < warmup:
        return cfg.lr * (0.1 + 0.9 * step / max(warmup, 1))
    t = (step - warmup) / max(total - warmup, 1)
    if cfg.schedule == "poly":
        return cfg.lr * (1 - t) ** 0.9
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def _param_groups(model: torch.nn.Module, wd: float, scaled: frozenset[int] = frozenset(),
                  lr_scale: float = 1.0) -> list[dict]:
    """Weight decay on weights, not on norms and biases; the parameters in ``scaled`` (by id) get
    their own groups whose learning rate is ``lr_scale`` times the schedule's."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, id(p) in scaled), []).append(p)
    return [{"params": ps, "weight_decay": wd if decays else 0.0, "lr_scale": lr_scale if slow else 1.0}
            for (decays, slow), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]


def _encoder_params(net: torch.nn.Module, model: str) -> frozenset[int]:
    """Ids of the parameters of the network's pre-trained encoder (the submodule its class names in
    ``encoder_module``: a backbone + head model's backbone, ESPNetv2's base network)."""
    name = getattr(net, "encoder_module", None)
    if name is None:
        raise UsageError(f"--encoder-lr: {model} has no pre-trained encoder to slow down "
                         "(backbone + head models and ESPNetv2 have one)")
    return frozenset(id(p) for p in getattr(net, name).parameters())


def _partial_load(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return len(keep), len(own)


def _rng_state() -> dict:
    """RNG states as tensors and plain data, so checkpoints load with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(rng: dict) -> None:
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in rng["python"]))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])


def checkpoint_meta(cfg: ModelCfg, size: tuple[int, int], base: str | None = None) -> dict:
    """What a checkpoint needs to be run as a model: base architecture, label space, class map."""
    return {
        "base": base or cfg.name,
        "class_map": cfg.class_map,
        "arch": cfg.arch,
        "arch_args": cfg.arch_args,
        "classes": list(cfg.dataset.classes),
        "palette": [list(c) for c in cfg.dataset.palette],
        "scored": cfg.dataset.scored,
        "dataset": cfg.dataset.name,
        "size": list(size),
    }


class Trainer:
    """Runs a :class:`TrainCfg`. Callbacks receive progress; everything else goes to ``out``."""

    def __init__(
        self,
        cfg: TrainCfg,
        on_step: Callable[[StepInfo], None] | None = None,
        on_epoch: Callable[[EpochInfo], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if cfg.unlabelled and not cfg.teacher:
            raise UsageError("--unlabelled needs --teacher: unlabelled frames are trained on a teacher's predictions")
        self.cfg = cfg
        self.on_step = on_step or (lambda s: None)
        self.on_epoch = on_epoch or (lambda e: None)
        self.log = log or (lambda m: None)
        self.device = resolve_device(cfg.device)
        self.out = Path(cfg.out)

        zoo = get_cfg(cfg.model)
        base = classes_as(zoo, cfg.classes_as) if cfg.classes_as else zoo
        if base.class_map and (cfg.num_classes or cfg.class_names):
            raise UsageError("--classes-as sets the classes; do not combine it with --num-classes/--class-names")
        self.base_name = zoo.name
        dataset = _train_dataset(cfg, base)
        self.input_size = cfg.input_size or cfg.size
        self.model_cfg = replace(base, name=f"{base.name}", dataset=dataset, input_size=self.input_size)
        self.model = build_model(self.model_cfg)
        self.net = weight_module(self.model)  # what checkpoints store (a mapped model's inner network)
        # Where the weights start, recorded in every checkpoint and in train_cfg.json: a zoo entry
        # with released weights fine-tunes them unless --scratch, which a held-out check must know.
        self.initialised_from = "scratch"
        if cfg.pretrained and base.arch != "lpsnet":
            try:  # the entry's ImageNet backbone weights, else its released weights (zoo/backbones.py)
                state, source = initial_weights(base)
                n, total = _partial_load(self.net, state)
                self.initialised_from = f"{n}/{total} tensors from {source}"
                self.log(f"initialised {self.initialised_from}")
            except Exception as e:  # no weights available: train from scratch, say so
                self.log(f"training {base.name} from scratch ({e})")
        if cfg.init:
            ck = torch.load(cfg.init, map_location="cpu", weights_only=True)
            n, total = _partial_load(self.net, ck.get("state_dict") or ck.get("model") or ck)
            if n == 0:
                raise UsageError(f"--init {cfg.init}: no weights fit {base.name}")
            self.initialised_from = f"{n}/{total} tensors from {cfg.init}"
            self.log(f"initialised {self.initialised_from}")
        self.model.to(self.device)

        samples = [s for d in ((cfg.data,) if isinstance(cfg.data, str) else cfg.data) for s in load_samples(d)]
        self.log(f"loading {len(samples)} training images")
        self.images = [read_rgb(s.image) for s in samples]
        self.labels = [self._map_labels(read_label(s.label)) for s in samples]
        self.aug = AugmentCfg(crop=cfg.size, scale=cfg.scale, base=cfg.input_size, jitter=cfg.jitter,
                              ignore_index=cfg.ignore_index)
        self.unlabelled = load_unlabelled(cfg.unlabelled, self.input_size, cfg.unlabelled_stride, self.log
                                          ) if cfg.unlabelled else Unlabelled()
        self.soft = self._teacher_targets(dataset) if cfg.teacher else None
        self.images += self.unlabelled.frames  # indices from len(self.labels) on are unlabelled
        weight = class_weights(self.labels, dataset.scored) if cfg.loss == "weighted" else None
        self.criterion = SegLoss(cfg.loss, cfg.ignore_index, weight).to(self.device)
        self.hints = None
        if cfg.hint_teacher:
            if self.model is not self.net:
                raise UsageError("--hint-teacher does not combine with --classes-as")
            self.hints = Hints(cfg.hint_teacher, self.net, self.device)
            self.log(f"feature distillation from {self.hints.source}")
        slow = _encoder_params(self.net, base.name) if cfg.encoder_lr != 1.0 else frozenset()
        groups = _param_groups(self.model, cfg.weight_decay, slow, cfg.encoder_lr)
        if self.hints is not None:
            groups += _param_groups(self.hints.proj, cfg.weight_decay)
        if cfg.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
        elif cfg.optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=cfg.lr)
        else:
            raise UsageError(f"unknown optimizer {cfg.optimizer!r}: use adamw or sgd")
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        # Crops are already at the network size: only the normalisation of inference is applied.
        self.norm = Normalizer(base.preprocess, cfg.size, self.device, torch.float32)
        self.steps_per_epoch = max(1, len(self.images) // cfg.batch)
        self.epoch = 0
        self.best = -1.0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="augment")

    def _teacher_targets(self, dataset: Dataset) -> list[np.ndarray]:
        """Teacher logits on the labelled images, then on the unlabelled frames; each set has its
        own cache in the run folder, so a --resume reuses both and adding frames keeps the first."""
        cfg = self.cfg
        teacher = Teacher(cfg.teacher, dataset, self.device, cfg.teacher_scales, cfg.teacher_flip, cfg.teacher_weights)
        soft = teacher.targets(self.images, self.log, self.out / "teacher_targets.npy")
        if self.unlabelled.frames:
            soft += teacher.targets(self.unlabelled.frames, self.log, self.out / "teacher_targets_unlabelled.npy",
                                    what="unlabelled frames")
        return soft

    def _map_labels(self, lab: np.ndarray) -> np.ndarray:
        """Label values outside the trained classes become the ignore index."""
        n = self.model_cfg.dataset.scored
        out = lab.copy()
        out[out >= n] = self.cfg.ignore_index
        return out

    def _sample(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Augmented image, label, teacher logits and distillation mask of training sample ``i``.

        A labelled image is distilled where its label is not ignored. An unlabelled frame's label is
        all ignore; in the augmentation a map of its area (any value but ignore) takes the label's
        place, so that its distillation mask covers the frame but not the padding."""
        ignore = self.cfg.ignore_index
        labelled = i < len(self.labels)
        lab = self.labels[i] if labelled else np.full(self.images[i].shape[:2], ignore ^ 1, np.uint8)
        rng = np.random.default_rng([self.cfg.seed, epoch, i])
        im, lb, sf = augment(self.images[i], lab, rng, self.aug, None if self.soft is None else self.soft[i])
        return im, lb if labelled else np.full_like(lb, ignore), sf, lb != ignore

    def _batch(self, epoch: int, step: int, order: np.ndarray) -> StepBatch:
        """The images, labels and targets of a step."""
        idx = order[step * self.cfg.batch : (step + 1) * self.cfg.batch]
        imgs, labs, softs, masks = zip(*(self._sample(epoch, int(i)) for i in idx))
        b = MixBatch(np.stack(imgs), np.stack(labs), np.stack(masks), None if self.soft is None else np.stack(softs))
        b = cutmix(b, np.random.default_rng([self.cfg.seed, epoch, step, 1]), self.cfg.cutmix)  # no-op at 0
        crops = torch.from_numpy(b.images).to(self.device).permute(0, 3, 1, 2)
        x = self.norm.normalize(crops).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(b.labels).to(self.device).long()
        soft = None if b.soft is None else torch.from_numpy(b.soft).to(self.device).permute(0, 3, 1, 2)
        hint_x = None if self.hints is None else self.hints.teacher_input(crops)
        return StepBatch(x, y, soft, torch.from_numpy(b.masks).to(self.device), hint_x)

    def loss(self, out: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        """The segmentation loss on labelled pixels plus, with a teacher, the weighted distillation
        loss on the ``mask`` pixels (all that an unlabelled frame contributes)."""
        loss = self.criterion(out, y)
        if soft is not None:
            loss = loss + self.cfg.kd_weight * distillation_loss(out.float(), soft, mask, self.cfg.kd_temperature)
        return loss

    def _step_loss(self, b: StepBatch) -> torch.Tensor:
        """:meth:`loss` of the network on a batch, plus the weighted feature distillation loss."""
        if b.hint_x is None:  # no hint teacher
            return self.loss(self.model(b.x), b.y, b.soft, b.mask)
        out, feats = self.net.forward_features(b.x)  # type: ignore[operator]
        return self.loss(out, b.y, b.soft, b.mask) + self.cfg.hint_weight * self.hints.loss(feats, b.hint_x)  # type: ignore[union-attr]

    def resume(self, path: str | Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(ck["model"])
        if self.hints is not None and "hint_projections" in ck:
            self.hints.proj.load_state_dict(ck["hint_projections"])
        self.opt.load_state_dict(ck["optimizer"])
        if "scaler" in ck:
            self.scaler.load_state_dict(ck["scaler"])
        self.epoch = int(ck["epoch"])
        self.best = float(ck.get("best", -1.0))
        if ck.get("rng"):
            _set_rng_state(ck["rng"])
        self.log(f"resumed from {path} at epoch {self.epoch}")

    def _save(self, name: str, full: bool, val_miou: float | None = None) -> None:
        meta = checkpoint_meta(self.model_cfg, self.input_size, self.base_name) | {
            "epoch": self.epoch, "val_miou": val_miou, "initialised_from": self.initialised_from}
        obj: dict[str, Any] = {"state_dict": self.net.state_dict(), "meta": meta}
        if full:
            obj |= {
                "model": obj.pop("state_dict"),
                "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch,
                "best": self.best,
                "rng": _rng_state(),
                "train_cfg": asdict(self.cfg),
            }
            if self.hints is not None:
                obj["hint_projections"] = self.hints.proj.state_dict()
        with atomic.replacing(self.out / name) as tmp:
            torch.save(obj, tmp)

    def validate(self) -> float:
        self.model.eval()
        seg = Segmenter.from_module(self.model, self.model_cfg, self.input_size, self.device)
        miou = evaluate(seg, self.cfg.val).miou if self.cfg.val else float("nan")  # type: ignore[arg-type]
        self.model.train()
        return miou

    def fit(self, stop_after: int | None = None) -> float:
        """Train until ``cfg.epochs`` (or stop after epoch ``stop_after``, as a kill would; the
        schedule still spans ``cfg.epochs``); returns the best validation mIoU (NaN without --val)."""
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        record = asdict(cfg) | {"unlabelled_frames": self.unlabelled.counts, "initialised_from": self.initialised_from}
        atomic.write_text(self.out / "train_cfg.json", json.dumps(record, indent=1, default=str))
        total = cfg.epochs * self.steps_per_epoch
        warmup = int(cfg.warmup_epochs * self.steps_per_epoch)
        self.model.train()
        while self.epoch < min(cfg.epochs, stop_after or cfg.epochs):
            t0 = time.perf_counter()
            order = np.random.default_rng([cfg.seed, self.epoch]).permutation(len(self.images))
            losses = []
            # Augmentation of the next batch overlaps with this step (OpenCV releases the GIL).
            pending = self._pool.submit(self._batch, self.epoch, 0, order)
            for step in range(self.steps_per_epoch):
                gstep = self.epoch * self.steps_per_epoch + step
                lr = _lr_at(gstep, total, warmup, cfg)
                for g in self.opt.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                batch = pending.result()
                if step + 1 < self.steps_per_epoch:
                    pending = self._pool.submit(self._batch, self.epoch, step + 1, order)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    loss = self._step_loss(batch)
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
                losses.append(float(loss.detach()))
                self.on_step(StepInfo(self.epoch + 1, cfg.epochs, step + 1, self.steps_per_epoch, losses[-1], lr))
            self.epoch += 1
            val = None
            if cfg.val and (self.epoch % cfg.val_every == 0 or self.epoch == cfg.epochs):
                val = self.validate()
                if val > self.best:
                    self.best = val
                    self._save("best.pth", full=False, val_miou=val)
            self._save("last.pth", full=True, val_miou=val)
            info = EpochInfo(self.epoch, cfg.epochs, float(np.mean(losses)), lr, time.perf_counter() - t0, val,
                             self.best if self.best >= 0 else None)
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(asdict(info)) + "\n")
            self.on_epoch(info)
        if not cfg.val:
            self._save("best.pth", full=False)
        return self.best if self.best >= 0 else float("nan")
