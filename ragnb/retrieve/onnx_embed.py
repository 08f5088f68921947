"""all-MiniLM-L6-v2 on ONNX Runtime, int8 with per-channel weights: ~3x torch fp32 on a CPU.

The ONNX file is built here from the installed sentence-transformers weights, on first use, and
cached like the MLX conversion (``cache_dir("onnx", "<model>-<sha12>")``)::

    BertModel -> mean pooling over the attention mask -> L2 normalisation      (one graph)
    torch.onnx.export(dynamo=False) -> model.onnx (fp32, identical vectors)
    onnxruntime.quantization.quantize_dynamic(per_channel=True) -> model-int8.onnx

Per-channel weight scales matter: the quantizer's default (one scale per tensor) gives a
minimum cosine of 0.72 to fp32 on pyfaq chunks and loses recall; per channel gives 0.98.
Pooling and normalisation live inside the graph, so at run time only ``onnxruntime`` and
``tokenizers`` are needed (no torch). Building the file needs torch, transformers and onnx.

Each text runs alone (``batch_size=1``): dynamic quantization scales the activations over the
whole input tensor, so in a padded batch a text's int8 vector depends on its neighbours and on
the padding (cosine 0.985 to itself alone); alone it is the same every time, and with no padding
to compute it was also 3-7x faster than batches of 32 on this 2-core CPU. With a larger
`batch_size`, texts are sorted by token count so each padded batch holds similar lengths.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragnb._config import cache_dir
from ragnb.errors import INSTALL, MissingDependencyError, ModelError

__all__ = ["ONNX_INSTALL", "OnnxEmbedder", "onnx_available", "onnx_model_folder"]

ONNX_INSTALL = INSTALL["dense"]
# version of the export recipe below: bump it when the graph or the quantization changes
RECIPE = 1
QUERY_BATCH = 4  # as MiniLMEmbedder: batches this small are queries, run on one thread


def onnx_available() -> bool:
    """Whether onnxruntime can be imported (the ONNX embedders need it at run time)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _weights_sha(folder: str) -> str:
    """First 12 hex digits of the SHA-256 of a model folder's weights, memoised per process."""
    import hashlib

    from ragnb.generate.convert import file_sha256

    files = sorted(Path(folder).glob("*.safetensors")) + sorted(Path(folder).glob("*.bin"))
    if not files:
        raise ModelError(f"no model weights (*.safetensors, *.bin) in {folder}")
    if len(files) == 1:
        return file_sha256(files[0])[:12]
    return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()[:12]


def onnx_model_folder(
    model_folder: str | Path, *, name: str | None = None, force: bool = False
) -> Path:
    """The folder holding ``model.onnx`` and ``model-int8.onnx`` built from a
    sentence-transformers model folder (mean pooling), building it on first use.

    It is named after `name` (default: the folder's name) and the weights' SHA-256, so changed
    weights build again. The build writes to
    a temporary folder and renames it into place: an interrupted build leaves nothing behind,
    and two processes building at once both end with a whole folder.

    Raises:
        ModelError: the folder is not a mean-pooling sentence-transformers model.
        MissingDependencyError: torch, transformers, onnx or onnxruntime missing.
    """
    source = Path(model_folder)
    sha = _weights_sha(str(source))
    target = cache_dir("onnx") / f"{name or source.name}-{sha}-r{RECIPE}"
    if (target / "manifest.json").is_file() and not force:
        return target
    return _build(source, sha, target)


def _pooling_is_mean(source: Path) -> bool:
    try:
        modules = json.loads((source / "modules.json").read_text())
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((source / pooling["path"] / "config.json").read_text())
    except (OSError, ValueError, StopIteration, KeyError):
        return False
    others = ("cls_token", "max_tokens", "mean_sqrt_len_tokens")
    return bool(config.get("pooling_mode_mean_tokens")) and not any(
        config.get(f"pooling_mode_{name}") for name in others
    )


def _build(source: Path, sha: str, target: Path) -> Path:
    if not _pooling_is_mean(source):
        raise ModelError(
            f"{source} is not a sentence-transformers model with mean pooling: the ONNX "
            "export supports that layout only; use MiniLMEmbedder for this model"
        )
    try:
        import onnx  # noqa: F401
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            f"{exc.name or 'torch/transformers/onnx/onnxruntime'} (builds the ONNX embedder)",
            ONNX_INSTALL,
        ) from exc

    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        from ragnb.retrieve.embedders import _quiet_transformers

        with _quiet_transformers():
            bert = AutoModel.from_pretrained(str(source), attn_implementation="eager")
        model = _mean_pooled(bert).eval()
        example = torch.ones((2, 8), dtype=torch.int64)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"embedding": {0: "batch"}}
        with torch.no_grad(), _quiet_export():
            torch.onnx.export(
                model,
                (example, example, torch.zeros_like(example)),
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        # per_channel: one scale per output row; the per-tensor default ruins MiniLM (see top)
        with _quiet_export():
            quantize_dynamic(
                tmp / "model.onnx",
                tmp / "model-int8.onnx",
                per_channel=True,
                weight_type=QuantType.QInt8,
            )
        for name in ("tokenizer.json", "sentence_bert_config.json", "config.json"):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        import onnxruntime

        manifest = {
            "source": str(source),
            "weights_sha256_12": sha,
            "recipe": RECIPE,
            "seconds": round(time.perf_counter() - start, 2),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "quantization": "dynamic int8, per-channel weights (QInt8), activations uint8",
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep its folder
            if not (target / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _quiet_export():
    """Hide the exporter's tracer warnings and the quantizer's pre-processing advice: the
    graph is checked against torch by the tests, and printing them in a notebook only alarms."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _mean_pooled(bert):
    """`bert` wrapped so its output is the sentence vector (the class needs torch, so it is
    defined on first use)."""
    import torch

    class MeanPooled(torch.nn.Module):
        """BERT -> mean of the token vectors under the attention mask -> unit length."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state  # (batch, tokens, dim)
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, dim)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooled(bert)


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (or another mean-pooling sentence-transformers folder) on ONNX Runtime.

    Args:
        model_path: a sentence-transformers model folder (default: the installed MiniLM).
        quantized: use the int8 per-channel model (default) or the fp32 export.
        batch_size: texts per ONNX Runtime call (1: each text alone, see the module docstring).
        threads: intra-op threads for bulk embedding (None: ONNX Runtime's default, the cores).

    The vectors of the fp32 export equal torch's; the int8 model's have a mean cosine of about
    0.994 to them. ``cache_id`` names the variant, so the two never share a vector cache.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        quantized: bool = True,
        batch_size: int = 1,
        threads: int | None = None,
    ):
        self.model_path = model_path
        self.quantized = quantized
        self.batch_size = batch_size
        self.threads = threads
        self._sessions: dict[int | None, object] = {}
        self._tokenizer = None
        self._folder_built: Path | None = None
        if model_path is not None:
            self.name = Path(model_path).name

    @property
    def variant(self) -> str:
        """ "onnx-int8" or "onnx-fp32"."""
        return "onnx-int8" if self.quantized else "onnx-fp32"

    @property
    def cache_id(self) -> str:
        """Identity for the disk cache of embeddings: model, weights, variant (and the batch
        size when it is not 1, since batched int8 vectors depend on their batch)."""
        batching = "" if self.batch_size == 1 else f"-batch{self.batch_size}"
        return f"{self.name}-{_weights_sha(str(self._source()))}-{self.variant}-r{RECIPE}{batching}"

    def _source(self) -> Path:
        from ragnb.retrieve.embedders import MiniLMEmbedder

        return MiniLMEmbedder(self.model_path)._folder()

    def _folder(self) -> Path:
        if self._folder_built is None:
            self._folder_built = onnx_model_folder(self._source(), name=self.name)
        return self._folder_built

    def _session(self, threads: int | None):
        if threads not in self._sessions:
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise MissingDependencyError("onnxruntime", ONNX_INSTALL) from exc
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # idle pool threads spinning steal the cores from everything else on a small machine
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            file = "model-int8.onnx" if self.quantized else "model.onnx"
            self._sessions[threads] = ort.InferenceSession(
                str(self._folder() / file), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]

    def _load_tokenizer(self):
        if self._tokenizer is None:
            try:
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise MissingDependencyError("tokenizers", ONNX_INSTALL) from exc
            folder = self._folder()
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config_path = folder / "sentence_bert_config.json"
            config = json.loads(config_path.read_text()) if config_path.is_file() else {}
            tokenizer.enable_truncation(max_length=int(config.get("max_seq_length", 256)))
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many word pieces each text has after truncation to the model's window."""
        return [len(e.ids) for e in self._load_tokenizer().encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: (len(texts), 384) float32."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._load_tokenizer().encode_batch(list(texts))
        session = self._session(1 if len(texts) <= QUERY_BATCH else self.threads)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            feed = {
                name: np.zeros((len(rows), width), dtype=np.int64)
                for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            for j, i in enumerate(rows):
                e = encodings[i]
                feed["input_ids"][j, : len(e.ids)] = e.ids
                feed["attention_mask"][j, : len(e.ids)] = e.attention_mask
                feed["token_type_ids"][j, : len(e.ids)] = e.type_ids
            out[rows] = session.run(["embedding"], feed)[0]
        return out

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, variant={self.variant!r}, dim={self.dim})"
