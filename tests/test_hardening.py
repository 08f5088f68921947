"""Issue #13: every hole found by hostile and careless use, reproduced and kept closed.

One test (or a few) per item of the issue, in its order; then the property-based tests
(hypothesis) of the --where parser, the magic argument parsing and the loaders, and the
corruption matrix of KnowledgeBase.load. Each test failed on the code before its fix.
"""

from __future__ import annotations

import json
import uuid

import polars as pl
import pytest

import ragnb
from ragnb.errors import InputError

PAIRS = pl.DataFrame(
    {
        "question": ["What colour is the Zorblax valve?", "Who invented the Quindle pump?"],
        "answer": ["The Zorblax valve is teal.", "Orvel Kestrin invented it."],
    }
)


# ---------------------------------------------------------------- 1. checkpoints never unpickle


class _Payload:
    """A pickle that creates a file when it is loaded: what a hostile state.pt would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run_folder(name: str):
    from ragnb.finetune.manifest import model_dir

    return model_dir(name)


def test_resume_never_unpickles_a_checkpoint(tmp_path):
    name = f"test-hostile-{uuid.uuid4().hex[:8]}"
    checkpoint = _run_folder(name) / "checkpoint"
    checkpoint.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch = pytest.importorskip("torch")
    torch.save(_Payload(marker), checkpoint / "state.pt")  # what torch.load would unpickle
    try:
        with pytest.raises(InputError, match="pickle"):
            ragnb.finetune.train(PAIRS, name=name, steps=2, resume=True, progress=False)
        assert not marker.exists()
    finally:
        import shutil

        shutil.rmtree(checkpoint.parent, ignore_errors=True)


def test_checkpoint_of_other_inputs_is_refused_before_loading_anything(tmp_path):
    from ragnb.finetune.torch_engine import read_checkpoint

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    state = {
        "fingerprint": {"data_sha256": "other"},
        "step": 2,
        "losses": [1.0, 0.9],
        "seconds": 1.0,
        "param_groups": [],
        "files": {"adapter": "adapter-0000002.safetensors", "optimizer": "../../etc/passwd"},
    }
    (checkpoint / "state.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match="other data or hyperparameters"):
        read_checkpoint(checkpoint, {"data_sha256": "mine"}, steps=8)
    # same inputs, but a file name that leaves the folder
    state["fingerprint"] = {"data_sha256": "mine"}
    (checkpoint / "state.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match="cannot be read"):
        read_checkpoint(checkpoint, {"data_sha256": "mine"}, steps=8)
    (checkpoint / "state.json").write_text("[1, 2")
    with pytest.raises(InputError, match="cannot be read"):
        read_checkpoint(checkpoint, {"data_sha256": "mine"}, steps=8)
