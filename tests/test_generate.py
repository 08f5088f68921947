"""Both backends pass the same tests with the real default model, offline.

MLX runs through mlx[cpu] here (5-7 tok/s), so generations stay short.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ragnb.generate as generate
from ragnb.errors import ContextOverflowError, InputError, MissingDependencyError, ModelError
from ragnb.generate import GenerationChunk, SamplingParams, load

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
COUNTING = "1, 2, 3, 4, 5, 6,"  # a continuation every decent model agrees on

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["llamacpp", "mlx"])
def backend(request):
    return load("default", backend=request.param)


def test_backend_reports_its_identity(backend):
    assert backend.name in ("llamacpp", "mlx")
    assert backend.model_name == "smollm2-135m"
    assert backend.context_length == 4096
    assert backend.default_stop == ()  # SmolLM2 has a chat template


def test_chat_prompt_uses_the_models_template(backend):
    prompt = backend.format_chat(QUESTION)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt


def test_stream_yields_cumulative_chunks_and_one_finish(backend):
    prompt = backend.format_chat(QUESTION)
    chunks = list(backend.stream(prompt, SamplingParams(max_tokens=6)))
    assert all(isinstance(c, GenerationChunk) for c in chunks)
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert 1 <= last.generation_tokens <= 6
    assert [c.generation_tokens for c in chunks] == sorted(c.generation_tokens for c in chunks)
    assert {c.prompt_tokens for c in chunks} == {backend.count_tokens(prompt)}
    assert last.prompt_tps > 0 and last.first_token_s > 0
    assert last.extra["backend"] == backend.name
    text = "".join(c.text for c in chunks)
    assert text.strip()
    # the plain call consumes the same stream
    assert backend.generate(prompt, SamplingParams(max_tokens=6)) == text


def test_max_tokens_ends_with_length(backend):
    chunks = list(backend.stream(COUNTING, SamplingParams(max_tokens=4)))
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].generation_tokens == 4
    assert chunks[-1].generation_tps > 0


def test_stop_string_cuts_the_text(backend):
    full = backend.generate(COUNTING, SamplingParams(max_tokens=8))
    assert " 8," in full, full
    chunks = list(backend.stream(COUNTING, SamplingParams(max_tokens=8, stop=(" 8,",))))
    assert "".join(c.text for c in chunks) == full[: full.index(" 8,")]
    assert chunks[-1].finish_reason == "stop"


def test_seed_makes_sampling_repeatable(backend):
    def sample(seed):
        params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=5, seed=seed)
        return backend.generate("Once upon a time", params)

    first = sample(7)
    assert sample(7) == first
    assert len({first, sample(8), sample(9), sample(10)}) > 1


def test_context_overflow_is_refused_and_the_backend_still_works(backend):
    prompt = "word " * backend.context_length
    with pytest.raises(ContextOverflowError, match=r"exceeds the context window of 4096 tokens"):
        backend.stream(prompt, SamplingParams(max_tokens=8))
    fits = backend.context_length - backend.count_tokens(COUNTING)
    with pytest.raises(ContextOverflowError):
        backend.stream(COUNTING, SamplingParams(max_tokens=fits + 1))
    assert backend.generate(COUNTING, SamplingParams(max_tokens=3)).strip()


def test_llamacpp_context_is_the_window_asked_for():
    # llama.cpp rounds n_ctx=320 up to 512, but only 320 tokens fit its token buffer.
    small = load("default", backend="llamacpp", n_ctx=320)
    assert small.context_length == 320
    prompt = "word " * (320 - 8 - small.count_tokens("word"))
    assert small.count_tokens(prompt) + 8 <= 320
    assert small.generate(prompt, SamplingParams(max_tokens=8)) is not None


def test_both_backends_agree_on_greedy_tokens():
    texts = {
        name: load(backend=name).generate(COUNTING, SamplingParams(max_tokens=8))
        for name in ("llamacpp", "mlx")
    }
    assert texts["llamacpp"] == texts["mlx"], texts
    counts = {name: load(backend=name).count_tokens(COUNTING) for name in texts}
    assert counts["llamacpp"] == counts["mlx"]


def test_load_is_memoised_per_arguments():
    first = load()
    assert load("default") is first
    assert load("smollm2-135m", backend="llamacpp") is first
    assert load(n_threads=2) is not first


def test_bad_sampling_options():
    with pytest.raises(InputError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(InputError, match="temperature"):
        SamplingParams(temperature=-1)
    with pytest.raises(InputError, match="top_p"):
        SamplingParams(top_p=0)
    assert SamplingParams(stop="\n").stop == ("\n",)
    # wrong types are InputErrors too, not a TypeError from a comparison
    for bad in ({"temperature": "hot"}, {"top_p": None}, {"seed": "x"}, {"stop": 5}):
        with pytest.raises(InputError, match=next(iter(bad))):
            SamplingParams(**bad)
    with pytest.raises(InputError, match="unknown backend 'vllm'"):
        load(backend="vllm")


@pytest.mark.parametrize("name", ["llamacpp", "mlx"])
def test_bad_model_files_leave_the_session_usable(tmp_path, name):
    with pytest.raises(ModelError, match="not found"):
        load(tmp_path / "missing.gguf", backend=name)
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(ModelError) as info:
        load(corrupt, backend=name)
    assert str(corrupt) in str(info.value) and "\n" not in str(info.value)
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("just some text")
    with pytest.raises(ModelError):
        load(not_gguf, backend=name)
    # the real model still loads and generates in the same process
    assert load(backend=name).generate(COUNTING, SamplingParams(max_tokens=3)).strip()


def test_gemma_on_both_backends():
    """Gemma's K-quants are dequantized for MLX (converted once, ~1.5 min); both backends
    then agree on greedy tokens and on the plain layout for this base model."""
    gemma = {name: load("gemma3-270m", backend=name) for name in ("llamacpp", "mlx")}
    prompts = {name: b.format_chat(QUESTION) for name, b in gemma.items()}
    assert prompts["llamacpp"] == prompts["mlx"]
    assert gemma["mlx"].default_stop == gemma["llamacpp"].default_stop == ("\nQuestion:",)
    texts = {n: b.generate(COUNTING, SamplingParams(max_tokens=6)) for n, b in gemma.items()}
    assert texts["llamacpp"] == texts["mlx"], texts
    assert gemma["llamacpp"].count_tokens(COUNTING) == gemma["mlx"].count_tokens(COUNTING)


def test_llamacpp_stays_quiet_on_stderr(capfd):
    capfd.readouterr()
    load("gemma3-270m", backend="llamacpp", n_ctx=1024)  # Gemma's SWA cache used to print
    assert capfd.readouterr().err == ""


def test_gemma_base_model_uses_the_plain_layout_and_stops():
    gemma = load("gemma3-270m", backend="llamacpp")
    assert gemma.default_stop == ("\nQuestion:",)
    prompt = gemma.format_chat(
        [
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What colour is the sky on a clear day?"},
        ]
    )
    assert prompt == (
        "Answer in one short sentence.\n\nQuestion: What colour is the sky on a clear day?\nAnswer:"
    )
    chunks = list(gemma.stream(prompt, SamplingParams(max_tokens=48)))
    text = "".join(c.text for c in chunks)
    assert "Question:" not in text
    assert chunks[-1].finish_reason in ("stop", "length")


def test_lora_adapter_gguf_loads_with_llamacpp(tmp_path):
    """A real (tiny, zero) LoRA adapter written with the gguf package leaves greedy output
    unchanged; a non-zero one changes it."""
    import numpy as np

    base = load(backend="llamacpp")
    expected = base.generate(COUNTING, SamplingParams(max_tokens=6))
    zero = write_lora(tmp_path / "zero.gguf", scale=0.0)
    tuned = load(adapter=zero, backend="llamacpp")
    assert tuned is not base and tuned.ref.adapter_gguf == zero.resolve()
    assert tuned.generate(COUNTING, SamplingParams(max_tokens=6)) == expected
    noisy = load(adapter=write_lora(tmp_path / "noisy.gguf", scale=np.float32(2.0)))
    assert noisy.generate(COUNTING, SamplingParams(max_tokens=6)) != expected


def write_lora(path: Path, scale: float) -> Path:
    """A rank-4 LoRA on every q/v projection of SmolLM2, in llama.cpp's adapter GGUF format."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 4.0)
    for block in range(30):
        for kind, rows in (("attn_q", 576), ("attn_v", 192)):
            a = rng.standard_normal((4, 576)).astype(np.float32) * scale
            b = rng.standard_normal((rows, 4)).astype(np.float32) * scale
            writer.add_tensor(f"blk.{block}.{kind}.weight.lora_a", a)
            writer.add_tensor(f"blk.{block}.{kind}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_finetuned_without_mlx_adapter_is_refused_by_mlx(tmp_path):
    lora = write_lora(tmp_path / "adapter.gguf", scale=0.0)
    folder = tmp_path / "tuned"
    folder.mkdir()
    lora.rename(folder / "adapter.gguf")
    manifest = '{"name": "tuned", "base_model": "smollm2-135m", "adapter_gguf": "adapter.gguf"}'
    (folder / "manifest.json").write_text(manifest)
    with pytest.raises(ModelError, match="cannot be served by the mlx backend; use backend='ll"):
        load(folder, backend="mlx")
    assert load(folder, backend="llamacpp").generate(COUNTING, SamplingParams(max_tokens=3))


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
"""


def run_hidden(blocked: set[str], code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python where the `blocked` packages cannot be imported."""
    script = BLOCK.format(blocked=blocked) + textwrap.dedent(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


def test_missing_backend_names_the_install_command():
    code = """
        import ragnb.generate as g
        from ragnb.errors import MissingDependencyError
        print(g.available_backends())
        for name in ("mlx", "llamacpp"):
            try:
                g.load(backend=name)
            except MissingDependencyError as exc:
                print(exc)
        print(g.choose_backend("auto"))
    """
    result = run_hidden({"mlx", "mlx_lm", "llama_cpp"}, code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "{'llamacpp': False, 'mlx': False}"
    assert lines[1] == 'the mlx backend is not installed: run `pip install "ragnb[mlx]"`'
    assert lines[2] == 'the llamacpp backend is not installed: run `pip install "ragnb[llamacpp]"`'
    assert lines[3] == "llamacpp"


def test_missing_dependency_error_type():
    assert issubclass(MissingDependencyError, ImportError)
    assert generate.available_backends() == {"llamacpp": True, "mlx": True}


def write_mlx_adapter(folder: Path, base_folder: Path, scale: float) -> Path:
    """A fine-tuned folder with a real mlx-lm LoRA adapter (rank 4 on the last 2 blocks)."""
    import json

    import mlx.core as mx
    import mlx_lm
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    lora = {"rank": 4, "scale": 1.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "mlp.up_proj"]}
    model, _ = mlx_lm.load(str(base_folder))
    linear_to_lora_layers(model, 2, lora)
    mx.random.seed(0)
    weights = {}
    for name, value in tree_flatten(model.parameters()):
        if name.endswith("lora_a"):
            weights[name] = value
        elif name.endswith("lora_b"):  # mlx-lm starts lora_b at zero: a no-op adapter
            weights[name] = value + scale * mx.random.normal(value.shape)
    adapter = folder / "mlx-adapter"
    adapter.mkdir(parents=True)
    mx.save_safetensors(str(adapter / "adapters.safetensors"), weights)
    config = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    manifest = {"name": folder.name, "base_model": "smollm2-135m", "mlx_adapter": "mlx-adapter/"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_mlx_adapter_from_a_manifest(tmp_path):
    base = load(backend="mlx")
    expected = base.generate(COUNTING, SamplingParams(max_tokens=4))
    zero = load(write_mlx_adapter(tmp_path / "zero", base.folder, 0.0), backend="mlx")
    assert zero is not base and zero.ref.kind == "finetuned"
    assert zero.generate(COUNTING, SamplingParams(max_tokens=4)) == expected
    noisy = load(write_mlx_adapter(tmp_path / "noisy", base.folder, 20.0), backend="mlx")
    assert noisy.generate(COUNTING, SamplingParams(max_tokens=4)) != expected
    with pytest.raises(ModelError, match="cannot be served by the llamacpp backend; use backend"):
        load(tmp_path / "zero", backend="llamacpp")


def test_thread_count_from_the_environment(monkeypatch):
    from ragnb.generate.llamacpp import default_threads

    monkeypatch.setenv("RAGNB_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("RAGNB_THREADS", "many")
    with pytest.raises(InputError, match="RAGNB_THREADS must be a positive integer, got 'many'"):
        default_threads()
    monkeypatch.delenv("RAGNB_THREADS")
    assert default_threads() == 1
    assert load(n_threads=1) is load()
