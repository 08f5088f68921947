"""Shared test setup: offline, with one persistent ragnb cache for the whole run.

The cache (converted MLX models, fine-tuned adapters) lives in .ragnb-cache/ at the repo root so
that slow one-off conversions are paid once per checkout, not once per test.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAGNB_HOME", str(ROOT / ".ragnb-cache"))
