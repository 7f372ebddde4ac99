"""Network definitions (ESPNet, ESPNetv2, LPS-Net) and their zoo entries."""

from . import zoo_entries as _zoo_entries  # noqa: F401  (registers the zoo)
