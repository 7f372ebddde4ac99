"""lightseg: real-time semantic segmentation (ESPNet, ESPNetv2, LPS-Net) over videos, cameras,
network streams and image folders.

Python API (everything the CLI does is callable from here)::

    from lightseg_cli import Segmenter, create_model, list_models
"""

__version__ = "0.1.0"

from .infer.segmenter import Segmenter  # noqa: E402
from .zoo import create_model, get_cfg, list_models  # noqa: E402

__all__ = ["Segmenter", "__version__", "create_model", "get_cfg", "list_models"]
