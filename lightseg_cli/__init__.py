"""lightseg: real-time semantic segmentation (ESPNet, ESPNetv2, LPS-Net) over videos, cameras,
network streams and image folders.

Python API (everything the CLI does is callable from here)::

    from lightseg_cli import Segmenter, build_segmenter, create_model, list_models
"""

from ._version import __version__
from .infer.build import build_segmenter
from .infer.segmenter import Segmenter
from .zoo import create_model, get_cfg, list_models

__all__ = ["Segmenter", "__version__", "build_segmenter", "create_model", "get_cfg", "list_models"]
