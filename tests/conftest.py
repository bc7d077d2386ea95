"""Make the ftlab library importable from tests (rule scripts get it from Snakemake's sys.path)."""

import os
import sys
from pathlib import Path

# Tests never reach a hub: a missing local model fails at once instead of retrying the network.
for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

try:  # the machine is shared: tests use one torch thread
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass
