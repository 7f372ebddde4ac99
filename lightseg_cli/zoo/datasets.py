"""Label spaces of the zoo's models: Cityscapes (19 + background), CamVid (11 + void), PASCAL VOC."""

from __future__ import annotations

from .pretrained import Dataset


def _voc_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """The standard PASCAL VOC colour map (bits of the class id spread over R, G, B)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


CITYSCAPES = Dataset(
    name="cityscapes",
    classes=(
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
        "motorcycle", "bicycle", "background",
    ),
    palette=(
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
        (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
        (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
        (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 0),
    ),
    scored=19,
)

CAMVID = Dataset(
    name="camvid",
    classes=(
        "sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
        "pedestrian", "bicyclist", "void",
    ),
    palette=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
        (0, 0, 0),
    ),
    scored=11,
)

# Models trained by lightseg predict the 11 real classes only (void is never a target).
CAMVID11 = Dataset(name="camvid", classes=CAMVID.classes[:11], palette=CAMVID.palette[:11], scored=11)

VOC = Dataset(
    name="voc",
    classes=(
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
        "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
        "sheep", "sofa", "train", "tvmonitor",
    ),
    palette=_voc_palette(21),
    scored=21,
)

DATASETS = {d.name: d for d in (CITYSCAPES, CAMVID, VOC)}
