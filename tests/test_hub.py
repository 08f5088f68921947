"""Hub ids resolved offline from a real Hugging Face cache laid out around the packaged models
(refs/main + snapshots/<revision>/files, as huggingface_hub writes it), with HF_HUB_OFFLINE=1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ragnb
from ragnb.errors import ModelError
from ragnb.finetune._base import base_model
from ragnb.generate import SamplingParams, load, resolve_model
from ragnb.generate.convert import mlx_folder
from ragnb.retrieve.embedders import MiniLMEmbedder, as_embedder

REVISION = "0123456789abcdef0123456789abcdef01234567"
PROMPT = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"
GREEDY = SamplingParams(max_tokens=8)


def cache_repo(hub: Path, repo: str, files: dict[str, Path]) -> Path:
    """Put `files` (name in the repo -> file on disk) into the cache as `repo`'s main."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(REVISION)
    snapshot = folder / "snapshots" / REVISION
    for name, source in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(source)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty hub cache under HF_HOME, offline."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    return hub


@pytest.fixture
def gguf() -> Path:
    return resolve_model("default").path


def test_a_cached_gguf_repo_loads_by_id_and_answers_like_the_file(hub, gguf):
    cache_repo(hub, "test-org/SmolLM2-GGUF", {gguf.name: gguf})
    ref = resolve_model("test-org/SmolLM2-GGUF")
    assert ref.format == "gguf" and ref.name == "test-org/SmolLM2-GGUF"
    assert ref.path.parent.name == REVISION

    by_id = load("test-org/SmolLM2-GGUF", backend="llamacpp")
    by_file = load("default", backend="llamacpp")
    assert by_id is not by_file
    assert by_id.generate(PROMPT, GREEDY) == by_file.generate(PROMPT, GREEDY)


def test_a_repo_with_several_ggufs_needs_a_quantization_or_file(hub, gguf):
    cache_repo(hub, "test-org/multi", {"smol.Q4_1.gguf": gguf, "smol.Q8_0.gguf": gguf})
    with pytest.raises(ModelError) as error:
        resolve_model("test-org/multi")
    assert "test-org/multi:smol.Q4_1.gguf" in str(error.value) and "\n" not in str(error.value)

    assert resolve_model("test-org/multi:Q8_0").path.name == "smol.Q8_0.gguf"
    assert resolve_model("test-org/multi:q4_1").path.name == "smol.Q4_1.gguf"
    assert resolve_model("test-org/multi:smol.Q8_0.gguf").path.name == "smol.Q8_0.gguf"
    with pytest.raises(ModelError, match=r'hf download test-org/multi --include "\*Q5_K_M\*.gguf"'):
        resolve_model("test-org/multi:Q5_K_M")


def test_an_id_that_is_not_cached_names_the_download_command(hub):
    with pytest.raises(ModelError) as error:
        resolve_model("test-org/absent")
    text = str(error.value)
    assert "\n" not in text
    assert "`hf download test-org/absent`" in text and "HF_HUB_OFFLINE" in text
    with pytest.raises(ModelError, match="hf download test-org/absent file.gguf"):
        ragnb.RAG(None, model="test-org/absent:file.gguf").backend  # noqa: B018


def test_an_mlx_repo_loads_by_id_with_the_mlx_backend(hub, gguf):
    pytest.importorskip("mlx_lm", reason='pip install "ragnb[mlx]"')
    converted = mlx_folder(gguf)  # ragnb's own conversion, cached after the first run
    cache_repo(hub, "test-org/SmolLM2-mlx", {p.name: p for p in converted.iterdir()})
    ref = resolve_model("test-org/SmolLM2-mlx")
    assert ref.format == "mlx" and ref.backends == ("mlx",)

    by_id = load("test-org/SmolLM2-mlx")  # auto picks MLX for an mlx-lm folder
    assert by_id.name == "mlx"
    reference = load("default", backend="mlx")  # the same folder, shared with other tests
    assert by_id.generate(PROMPT, GREEDY) == reference.generate(PROMPT, GREEDY)


def test_list_models_shows_cached_hub_models_but_not_embedders(hub, gguf):
    cache_repo(hub, "test-org/SmolLM2-GGUF", {gguf.name: gguf})
    cache_repo(hub, "test-org/multi", {"smol.Q4_1.gguf": gguf, "smol.Q8_0.gguf": gguf})
    minilm = MiniLMEmbedder()._folder()
    cache_repo(hub, "sentence-transformers/mini", {p.name: p for p in minilm.iterdir()})

    table = ragnb.list_models()
    hub_rows = table.filter(table["kind"] == "hub")
    assert sorted(hub_rows["name"].to_list()) == [
        "test-org/SmolLM2-GGUF",
        "test-org/multi:smol.Q4_1.gguf",
        "test-org/multi:smol.Q8_0.gguf",
    ]
    for name in hub_rows["name"]:
        assert resolve_model(name).format == "gguf"  # every listed name loads as listed


def test_a_sentence_transformers_model_by_hub_id_embeds_like_its_folder(hub):
    folder = MiniLMEmbedder()._folder()
    cache_repo(hub, "sentence-transformers/all-MiniLM-L6-v2", {p.name: p for p in folder.iterdir()})
    embedder = as_embedder("sentence-transformers/all-MiniLM-L6-v2")
    assert embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
    texts = ["How long do the batteries last?", "Reset the console."]
    assert np.allclose(embedder.embed(texts), MiniLMEmbedder(folder).embed(texts), atol=1e-5)

    with pytest.raises(ModelError, match="hf download org/missing-embedder"):
        as_embedder("org/missing-embedder")


def test_fine_tuning_takes_a_cached_hub_gguf_as_base_by_its_id(hub, gguf):
    cache_repo(hub, "test-org/SmolLM2-GGUF", {gguf.name: gguf})
    name, path = base_model("test-org/SmolLM2-GGUF")
    assert name == "test-org/SmolLM2-GGUF"  # the manifest keeps the id, not a cache path
    assert path.read_bytes()[:4] == b"GGUF"
    with pytest.raises(ModelError, match="served"):
        base_model("smollm2@http://127.0.0.1:9/v1")


def test_a_model_fine_tuned_from_a_hub_id_gets_a_valid_default_name():
    from ragnb.finetune import _auto_name
    from ragnb.finetune.manifest import check_name

    for base in ("bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "/models/x y.gguf", "smollm2-135m"):
        name = _auto_name(base, {"engine": "torch"})
        assert check_name(name) == name and "/" not in name
    assert _auto_name("org/repo:Q4_K_M", {"engine": "torch"}).startswith("repo-Q4_K_M-torch-")
