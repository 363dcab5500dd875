"""CTR/CVR models: data preparation, architectures (``zoo``), training, calibration, export.

Models are pure ``torch.nn.Module``s with ``forward`` only; training, checkpointing and devices
live in the trainer. Importing this package does not import torch; the sub-modules do.
"""
