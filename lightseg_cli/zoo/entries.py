"""The zoo's entries: which network, weights, label space and preprocessing each model name means.
Importing this module registers them (``zoo/__init__`` does).

The authors' preprocessing is reproduced exactly (see ``Preprocess``): ESPNet was trained on
OpenCV BGR images standardised with per-dataset statistics and divided by 255 afterwards;
ESPNetv2 on RGB images with ImageNet statistics, resized with PIL's antialiased bilinear.
"""

from __future__ import annotations

from ..models.efficientnet_lite import CONFIGS as LITE_CONFIGS
from ..models.efficientnet_lite import EfficientNetLite
from ..models.espnet import ESPNet, ESPNetC
from ..models.espnetv2 import ESPNetv2Seg
from ..models.fbnet import CONFIGS as FBNET_CONFIGS
from ..models.fbnet import FBNet
from ..models.ghostnet import GhostNet
from ..models.heads import LRASPP, BackboneSeg
from ..models.lpsnet import CONFIGS as LPS_CONFIGS
from ..models.lpsnet import LPSNet
from .backbones import BACKBONE_WEIGHTS
from .datasets import CAMVID, CAMVID11, CITYSCAPES, VOC
from .pretrained import ModelCfg, Preprocess
from .registry import register_arch, register_model

# ESPNet: BGR, (p - mean) / std / 255 -> std in pixel units is std * 255.
_ESPNET_CITY = Preprocess(
    order="bgr",
    mean=(72.3923111, 82.90893555, 73.15840149),
    std=(45.3192215 * 255, 46.15289307 * 255, 44.91483307 * 255),
    resize="bilinear",
)
# Recomputed from the 367 CamVid train images as the authors' loadData.py does.
_ESPNET_CAMVID = Preprocess(
    order="bgr",
    mean=(110.3310546875, 108.40888977050781, 105.03321838378906),
    std=(72.12568664550781 * 255, 72.69076538085938 * 255, 69.90434265136719 * 255),
    resize="bilinear",
)
# ImageNet statistics in pixel units, RGB.
IMAGENET = Preprocess(
    order="rgb",
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
    std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    resize="bilinear-aa",
)

# EfficientNet-Lite's ImageNet weights were trained on [-1, 1] inputs ((p - 127) / 128, the
# TensorFlow reference's "inception-style" statistics, kept for int8 quantisation).
_LITE = Preprocess(order="rgb", mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0), resize="bilinear-aa")

_ESPNET_PAPER = "Mehta et al., ESPNet, ECCV 2018 (arXiv:1803.06815)"
_ESPNETV2_PAPER = "Mehta et al., ESPNetv2, CVPR 2019 (arXiv:1811.11431)"
_LPS_PAPER = "Zhang et al., LPS-Net, 2022 (arXiv:2207.13600)"
_LRASPP = "LR-ASPP head: Howard et al., MobileNetV3, ICCV 2019 (arXiv:1905.02244)"
_LITE_PAPER = f"Tan & Le, EfficientNet, ICML 2019 (arXiv:1905.11946), Lite variants; {_LRASPP}"
_GHOST_PAPER = f"Han et al., GhostNet, CVPR 2020 (arXiv:1911.11907); {_LRASPP}"
_FBNET_PAPER = f"Wu et al., FBNet, CVPR 2019 (arXiv:1812.03443); {_LRASPP}"


@register_arch("espnet")
def _espnet(cfg: ModelCfg) -> ESPNet:
    return ESPNet(cfg.num_classes, **cfg.arch_args)


@register_arch("espnet-c")
def _espnet_c(cfg: ModelCfg) -> ESPNetC:
    return ESPNetC(cfg.num_classes, **cfg.arch_args)


@register_arch("espnetv2")
def _espnetv2(cfg: ModelCfg) -> ESPNetv2Seg:
    return ESPNetv2Seg(cfg.num_classes, **cfg.arch_args)


@register_arch("lpsnet")
def _lpsnet(cfg: ModelCfg) -> LPSNet:
    return LPSNet(cfg.num_classes, LPS_CONFIGS[cfg.arch_args["variant"]])


def _lraspp(backbone: EfficientNetLite | GhostNet | FBNet, cfg: ModelCfg) -> BackboneSeg:
    return BackboneSeg(backbone, LRASPP(backbone.out_channels, cfg.num_classes))


@register_arch("efficientnet-lite")
def _efficientnet_lite(cfg: ModelCfg) -> BackboneSeg:
    a = cfg.arch_args
    return _lraspp(EfficientNetLite(LITE_CONFIGS[a["variant"]], 0, a.get("output_stride", 32)), cfg)


@register_arch("ghostnet")
def _ghostnet(cfg: ModelCfg) -> BackboneSeg:
    a = cfg.arch_args
    return _lraspp(GhostNet(0, a.get("width", 1.0), a.get("output_stride", 32)), cfg)


@register_arch("fbnet")
def _fbnet(cfg: ModelCfg) -> BackboneSeg:
    a = cfg.arch_args
    return _lraspp(FBNet(FBNET_CONFIGS[a["variant"]], 0, a.get("output_stride", 32)), cfg)


for _q in (8, 5, 3):
    register_model(ModelCfg(
        name="espnet-cityscapes" if _q == 8 else f"espnet-q{_q}-cityscapes",
        arch="espnet",
        arch_args={"p": 2, "q": _q},
        dataset=CITYSCAPES,
        input_size=(1024, 512),
        preprocess=_ESPNET_CITY,
        weights=f"espnet/espnet_p_2_q_{_q}_cityscapes.pth",
        size_divisor=8,
        description=f"ESPNet p=2 q={_q} with the RUM decoder, authors' Cityscapes weights",
        paper=_ESPNET_PAPER,
    ))
for _q in (8, 5, 3):
    register_model(ModelCfg(
        name="espnet-c-cityscapes" if _q == 8 else f"espnet-c-q{_q}-cityscapes",
        arch="espnet-c",
        arch_args={"p": 2, "q": _q},
        dataset=CITYSCAPES,
        input_size=(1024, 512),
        preprocess=_ESPNET_CITY,
        weights=f"espnet/espnet_c_p_2_q_{_q}_cityscapes.pth",
        size_divisor=8,
        description=f"ESPNet-C p=2 q={_q} (encoder only, bilinear x8), authors' Cityscapes weights",
        paper=_ESPNET_PAPER,
    ))
register_model(ModelCfg(
    name="espnet-camvid",
    arch="espnet",
    arch_args={"p": 2, "q": 8, "decoder_skip": "level1_cat"},
    dataset=CAMVID,
    input_size=(480, 360),
    preprocess=_ESPNET_CAMVID,
    weights="espnet/espnet_p_2_q_8_camvid.pth",
    size_divisor=8,
    description="ESPNet p=2 q=8 (training-code decoder variant), authors' CamVid weights",
    paper=_ESPNET_PAPER,
))

for _s in ("0.5", "1.0", "1.5", "2.0"):
    for _size, _suffix in (((1024, 512), ""), ((512, 256), "-512x256")):
        register_model(ModelCfg(
            name=f"espnetv2-s{_s}-cityscapes{_suffix}",
            arch="espnetv2",
            arch_args={"s": float(_s)},
            dataset=CITYSCAPES,
            input_size=_size,
            preprocess=IMAGENET,
            weights=f"espnetv2/espnetv2_s_{_s}_city_{_size[0]}x{_size[1]}.pth",
            size_divisor=16,
            description=f"ESPNetv2 s={_s}, authors' Cityscapes weights trained at {_size[0]}x{_size[1]}",
            paper=_ESPNETV2_PAPER,
        ))
    register_model(ModelCfg(
        name=f"espnetv2-s{_s}-voc",
        arch="espnetv2",
        arch_args={"s": float(_s)},
        dataset=VOC,
        input_size=(384, 384),
        preprocess=IMAGENET,
        weights=f"espnetv2/espnetv2_s_{_s}_pascal_384x384.pth",
        size_divisor=16,
        description=f"ESPNetv2 s={_s}, authors' PASCAL VOC 2012 weights",
        paper=_ESPNETV2_PAPER,
    ))

# Cityscapes ESPNetv2 fine-tuned on CamVid through the class map (zoo/classmap.py): the network keeps
# its 20 Cityscapes outputs and weight format; CamVid logits are its probabilities summed per class.
for _s in ("1.0", "2.0"):
    register_model(ModelCfg(
        name=f"espnetv2-s{_s}-camvid",
        arch="espnetv2",
        arch_args={"s": float(_s)},
        dataset=CAMVID11,
        input_size=(960, 704),  # CamVid frames at 2x, close to the Cityscapes scale it was pre-trained at
        preprocess=IMAGENET,
        weights=f"espnetv2/espnetv2_s_{_s}_camvid.pth",
        size_divisor=16,
        class_map="cityscapes:camvid",
        description=f"ESPNetv2 s={_s}, authors' Cityscapes weights fine-tuned on CamVid by lightseg "
                    "(see weights/README.md)",
        paper=_ESPNETV2_PAPER,
    ))

for _v in ("s", "m", "l"):
    register_model(ModelCfg(
        name=f"lpsnet-{_v}-camvid",
        arch="lpsnet",
        arch_args={"variant": _v},
        dataset=CAMVID11,
        input_size=(480, 360),  # what the shipped weights were trained at (see weights/README.md)
        preprocess=IMAGENET,
        weights=f"lpsnet/lpsnet_{_v}_camvid.pth",
        size_divisor=1,
        description=f"LPS-Net-{_v.upper()}, trained by lightseg on CamVid train (see weights/README.md)",
        paper=_LPS_PAPER,
    ))

# Backbone + LR-ASPP networks on CamVid (11 classes). Output stride 32: at 480x360 Lite0 costs
# 1.30 GMACs (2.42 at output stride 16), about ESPNet's 1.34. Their weights are trained by lightseg;
# until a release ships them, running one says how to train it (zoo/weights.resolve).
for _v in LITE_CONFIGS:
    _imagenet = f"efficientnet-{_v}-imagenet"
    register_model(ModelCfg(
        name=f"efficientnet-{_v}-camvid",
        arch="efficientnet-lite",
        arch_args={"variant": _v, "output_stride": 32},
        dataset=CAMVID11,
        input_size=(480, 360),
        preprocess=_LITE,
        weights=f"efficientnet/efficientnet_{_v}_camvid.pth",
        description=f"EfficientNet-{_v.capitalize()} + LR-ASPP, trained by lightseg on CamVid"
                    + (" from ImageNet weights" if _imagenet in BACKBONE_WEIGHTS else ""),
        paper=_LITE_PAPER,
        pretrained_backbone=_imagenet if _imagenet in BACKBONE_WEIGHTS else None,
    ))
register_model(ModelCfg(
    name="ghostnet-camvid",
    arch="ghostnet",
    arch_args={"width": 1.0, "output_stride": 32},
    dataset=CAMVID11,
    input_size=(480, 360),
    preprocess=IMAGENET,
    weights="ghostnet/ghostnet_camvid.pth",
    description="GhostNet 1.0x + LR-ASPP, trained by lightseg on CamVid",
    paper=_GHOST_PAPER,
))
for _v in FBNET_CONFIGS:
    register_model(ModelCfg(
        name=f"fbnet-{_v}-camvid",
        arch="fbnet",
        arch_args={"variant": _v, "output_stride": 32},
        dataset=CAMVID11,
        input_size=(480, 360),
        preprocess=IMAGENET,
        weights=f"fbnet/fbnet_{_v}_camvid.pth",
        description=f"FBNet-{_v.upper()} + LR-ASPP, trained by lightseg on CamVid",
        paper=_FBNET_PAPER,
    ))
