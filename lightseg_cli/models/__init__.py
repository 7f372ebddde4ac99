"""Network definitions (ESPNet, ESPNetv2, LPS-Net) as plain ``nn.Module``s; they know nothing of the
zoo, which names them, with their weights and label spaces, in ``zoo/entries.py``."""
