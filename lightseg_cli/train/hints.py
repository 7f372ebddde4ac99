"""Feature distillation ("hints", as in FitNets): a pre-trained backbone's features on every
training crop, which the student's backbone features learn to predict.

``lightseg train --hint-teacher efficientnet-lite2`` runs that entry's pre-trained backbone (here
the ImageNet EfficientNet-Lite2 of the ``efficientnet`` extra) on each augmented batch, without
gradients, through its own preprocessing. For each of the stride-8, -16 and -32 features the loss
is the mean squared distance between the student's features, mapped to the teacher's width by a
1x1 convolution, and the teacher's, both L2-normalised over channels at every pixel: the student
learns where the teacher's features point, whatever their scale. The projections train with the
student and are not part of the network that ships. A student must be a backbone + head
composition (:class:`~lightseg_cli.models.heads.BackboneSeg`: GhostNet, FBNet, EfficientNet-Lite).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..infer.preprocess import Normalizer
from ..models.heads import BackboneSeg
from ..zoo import get_cfg
from ..zoo.backbones import initial_weights
from ..zoo.registry import build_model

Features = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def hint_loss(student: Features, teacher: Features) -> torch.Tensor:
    """Mean over the three strides of the per-pixel squared distance of the channel-normalised
    features (``student`` already projected to the teacher's widths)."""
    total = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        if s.shape[2:] != t.shape[2:]:
            t = F.interpolate(t, size=s.shape[2:], mode="bilinear", align_corners=False)
        total = total + (F.normalize(s, dim=1) - F.normalize(t, dim=1)).pow(2).sum(1).mean()
    return total / len(student)


class Hints(nn.Module):
    """The teacher backbone (frozen) and the student's projections (trained).

    Args:
        teacher: a zoo entry whose pre-trained backbone weights lightseg can load (ImageNet
            EfficientNet-Lite0..2 with the ``efficientnet`` extra).
        student: the network being trained.
        device: where both run.
    """

    def __init__(self, teacher: str, student: nn.Module, device: torch.device) -> None:
        super().__init__()
        if not isinstance(student, BackboneSeg):
            raise UsageError(f"--hint-teacher needs a backbone + head student (GhostNet, FBNet, EfficientNet-Lite); "
                             f"{type(student).__name__} has no backbone features to distil into")
        cfg = get_cfg(teacher)
        if not cfg.pretrained_backbone:
            raise UsageError(f"--hint-teacher {teacher}: lightseg knows no pre-trained backbone weights for it "
                             "(use efficientnet-lite0, -lite1 or -lite2)")
        state, self.source = initial_weights(cfg)  # raises, with the install hint, when the extra is missing
        net = build_model(cfg)
        net.load_state_dict(state, strict=False)
        # Frozen, batch norms included: nothing puts it back in training mode (it is not part of the student).
        self.teacher = net.backbone.to(device).eval().requires_grad_(False)  # type: ignore[union-attr]
        self.norm = Normalizer(cfg.preprocess, cfg.input_size, device, torch.float32)
        widths = zip(student.backbone.out_channels, self.teacher.out_channels)  # type: ignore[union-attr]
        self.proj = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in widths).to(device)

    def teacher_input(self, crops: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` uint8 RGB crops -> the teacher's normalised input."""
        return self.norm.normalize(crops.float()).contiguous(memory_format=torch.channels_last)

    def loss(self, student_features: Features, teacher_input: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.teacher.features(teacher_input)
        projected = tuple(p(f.float()) for p, f in zip(self.proj, student_features))
        return hint_loss(projected, target)  # type: ignore[arg-type]
