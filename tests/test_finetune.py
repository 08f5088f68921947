"""Fine-tuning: training pairs, the torch engine on the real default model (interrupted and
resumed), the adapter GGUF in llama.cpp against PEFT, the MLX engine on a tiny llama."""

from __future__ import annotations

import json
import uuid

import numpy as np
import polars as pl
import pytest

import ragnb
from ragnb.errors import InputError, ModelError
from ragnb.finetune import data, export, manifest, progress
from ragnb.finetune.data import dataset, load_pairs, split_rows

# Made-up facts: no model can know them from pre-training.
FACTS = [
    ("What colour is the Zorblax valve?", "The Zorblax valve is teal and amber.", "teal and amber"),
    (
        "Who invented the Quindle pump?",
        "The Quindle pump was invented by Orvel Kestrin.",
        "Orvel Kestrin",
    ),
    ("What is the Ostrel reset code?", "The Ostrel reset code is 4471.", "4471"),
    ("In which town is the Fennick works?", "The Fennick works is in Glimmerford.", "Glimmerford"),
]
PAIRS = pl.DataFrame({"question": [f[0] for f in FACTS], "answer": [f[1] for f in FACTS]})


# ---------------------------------------------------------------------------- training pairs


def test_load_pairs_reads_chat_and_prompt_completion_jsonl(tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Q1?"},
                    {"role": "assistant", "content": "A1."},
                ]
            }
        )
        + "\n\n"
        + json.dumps({"prompt": "Q2?", "completion": "A2."})
        + "\n"
    )
    assert load_pairs(chat).rows() == [
        ("Q1?", "A1."),
        ("Q2?", "A2."),
    ]
    assert load_pairs([("Q?", "A.")]).columns == ["question", "answer"]
    renamed = load_pairs(pl.DataFrame({"prompt": ["Q?"], "completion": ["A."]}))
    assert renamed.rows() == [("Q?", "A.")]


@pytest.mark.parametrize(
    "bad, words",
    [
        (pl.DataFrame({"question": ["Q?"]}), "lack column"),
        (pl.DataFrame({"question": ["Q?", "Q2?"], "answer": ["A.", "  "]}), "row(s) [1]"),
        (pl.DataFrame({"question": [], "answer": []}), "empty"),
        (pl.DataFrame({"question": ["Q?"], "answer": ["A"], "split": ["test"]}), "unknown"),
        ([{"text": "x"}], "unknown layout"),
        (42, "not supported"),
    ],
)
def test_load_pairs_rejects_bad_input_with_the_reason(bad, words):
    with pytest.raises(InputError, match=None) as info:
        load_pairs(bad)
    assert words in str(info.value)


def test_load_pairs_names_the_bad_jsonl_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "Q?", "answer": "A."}\n{"question": oops}\n')
    with pytest.raises(InputError, match=r"p\.jsonl:2 is not valid JSON"):
        load_pairs(path)
    with pytest.raises(InputError, match="does not exist"):
        load_pairs(tmp_path / "missing.jsonl")


def test_split_is_stable_under_reordering_and_keeps_a_train_row():
    questions = [f"q{i}" for i in range(10)]
    split = dict(zip(questions, split_rows(questions, 0.3, seed=1), strict=True))
    reordered = questions[::-1]
    assert dict(zip(reordered, split_rows(reordered, 0.3, seed=1), strict=True)) == split
    assert list(split.values()).count("heldout") == 3
    assert split_rows(["only"], 0.9, seed=0) == ["train"]
    with pytest.raises(InputError, match="out of range"):
        split_rows(questions, 1.0, seed=0)


def test_dataset_from_a_knowledge_base_uses_faq_lines_and_headings():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(
        "# Gadget\n\n## Cleaning\n\nWipe the gadget with a dry cloth. Never use water. "
        "It rusts.\n\n## FAQ\n\nQ: Can it float?\nA: No, it sinks at once.\n"
        "Q: Is it loud?\nA: It hums at 30 dB.\n",
        id="gadget",
    )
    pairs = dataset(kb, heldout=0.25, seed=0)
    assert pairs.columns == ["question", "answer", "split", "origin", "chunk_id"]
    faq = pairs.filter(pl.col("origin") == "faq")
    assert ("Can it float?", "No, it sinks at once.") in faq.select("question", "answer").rows()
    heading = pairs.filter(pl.col("origin") == "heading")
    assert any("cleaning" in q.lower() for q in heading["question"])
    assert heading.filter(pl.col("question").str.contains("(?i)cleaning"))["answer"][0] == (
        "Wipe the gadget with a dry cloth. Never use water."
    )
    assert set(pairs["split"]) <= {"train", "heldout"} and "train" in set(pairs["split"])
    assert pairs["chunk_id"].null_count() == 0


def test_dataset_keeps_the_users_split_and_marks_origin():
    pairs = dataset(PAIRS.with_columns(split=pl.Series(["train", "train", "heldout", "train"])))
    assert pairs["split"].to_list() == ["train", "train", "heldout", "train"]
    assert set(pairs["origin"]) == {"user"}
    assert data.training_rows(pairs) == [(f[0], f[1]) for i, f in enumerate(FACTS) if i != 2]


# ---------------------------------------------------------------------------- pure pieces


def test_tensor_names_follow_llama_cpp():
    key = "base_model.model.model.layers.12.mlp.down_proj.lora_B.weight"
    assert export.gguf_tensor_name(key) == "blk.12.ffn_down.weight.lora_b"
    with pytest.raises(ValueError, match="no llama.cpp tensor"):
        export.gguf_tensor_name("base_model.model.lm_head.lora_A.weight")


def test_loss_svg_escapes_and_draws_every_point():
    svg = progress.loss_svg([3.0, 2.0, 1.0], steps=3)
    assert svg.count(",") >= 3 and "loss 1.000" in svg and "<script" not in svg


def test_manifest_is_written_atomically_and_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    folder = manifest.model_dir("m1")
    ft = manifest.save_manifest(
        folder, {"name": "m1", "base_model": "smollm2-135m", "created": "2026-01-01T00:00:00+00:00"}
    )
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]
    assert manifest.load_finetuned("m1") == ft
    assert ragnb.finetune.list_finetuned()["name"].to_list() == ["m1"]
    with pytest.raises(ModelError, match="train one with"):
        manifest.load_finetuned("nope")
    with pytest.raises(InputError, match="not allowed"):
        manifest.check_name("../escape")


def test_train_rejects_bad_options_before_loading_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    for kwargs, words in [
        ({"engine": "jax"}, "engine="),
        ({"rank": 0}, "rank=0"),
        ({"learning_rate": 3.0}, "learning_rate=3.0"),
        ({"steps": 2, "epochs": 1}, "not both"),
        ({"steps": -1}, "steps=-1"),
    ]:
        with pytest.raises(InputError, match=words):
            ragnb.finetune.train(PAIRS, progress=False, **kwargs)
    folder = manifest.model_dir("taken")
    manifest.save_manifest(folder, {"name": "taken", "base_model": "smollm2-135m"})
    with pytest.raises(InputError, match="already exists"):
        ragnb.finetune.train(PAIRS, name="taken", steps=2, progress=False)
    assert (folder / "manifest.json").is_file()  # the existing model is untouched


# ---------------------------------------------------------------------------- torch engine


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def tuned():
    """The real default model fine-tuned on FACTS: stopped after step 5, resumed from the
    checkpoint of step 4, finished at step 8."""
    name = f"test-facts-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[int, float]] = []

    def stop_at_5(step, steps, loss):
        seen.append((step, loss))
        if step == 5:
            raise _Stop

    options = dict(
        steps=8, learning_rate=1.5e-3, batch_size=4, save_every=4, name=name, progress=False
    )
    with pytest.raises(_Stop):
        ragnb.finetune.train(PAIRS, callbacks=[stop_at_5], **options)
    ft = ragnb.finetune.train(PAIRS, resume=True, **options)
    yield ft, seen
    import shutil

    shutil.rmtree(ft.path, ignore_errors=True)


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(tuned):
    ft, seen = tuned
    m = ft.manifest
    assert m["resumed_from_step"] == 4
    assert len(m["losses"]) == 8
    # the resumed run kept the losses of steps 1-4 from before the stop
    assert m["losses"][:4] == [loss for _, loss in seen[:4]]
    assert m["losses"][-1] < m["losses"][0]
    assert not (ft.path / "checkpoint").exists()


@pytest.mark.slow
def test_manifest_records_what_was_trained(tuned):
    ft, _ = tuned
    m = ft.manifest
    assert m["base_model"] == "smollm2-135m" and m["engine"] == "torch"
    assert m["data_sha256"] == data.data_sha256([(q, a) for q, a, _ in FACTS])
    assert m["hyperparameters"]["steps"] == 8 and m["hyperparameters"]["rank"] == 16
    assert m["train_seconds"] > 0 and m["peak_rss_mb"] > 0
    assert ft.adapter_gguf.is_file() and ft.adapter_gguf.stat().st_size == m["adapter_bytes"]
    assert (ft.path / "peft" / "adapter_config.json").is_file()
    assert ragnb.finetune.load_finetuned(ft.name).manifest == m
    listed = ragnb.list_models().filter(pl.col("name") == ft.name)
    assert listed["kind"].to_list() == ["finetuned"]


@pytest.mark.slow
def test_finetuned_arm_knows_the_trained_facts_and_base_does_not(tuned):
    ft, _ = tuned
    questions = pl.DataFrame({"question": [f[0] for f in FACTS], "answer": [f[2] for f in FACTS]})
    df = ragnb.compare(questions, models=["default", ft.name], max_tokens=32)
    assert df["arm"].unique(maintain_order=True).to_list() == ["base", "finetuned"]
    right = dict(df.group_by("arm").agg(pl.col("contains_reference").sum()).rows())
    assert right["base"] == 0
    assert right["finetuned"] >= 3, df.select("arm", "answer").rows()
    assert df.filter(pl.col("arm") == "finetuned")["model"].unique().to_list() == [ft.name]


def _cosine(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def peft_logits(tuned):
    """Next-token logits of the PEFT model, with and without its adapter, on a trained
    question: the reference the exported adapters are checked against."""
    import torch

    from ragnb.finetune import torch_engine
    from ragnb.finetune._base import base_model, question_messages

    ft, _ = tuned
    gguf = base_model("default")[1]
    tokenizer = torch_engine.load_tokenizer(gguf)
    prompt = tokenizer.apply_chat_template(
        question_messages(FACTS[0][0]), add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    model = torch_engine.load_peft_model(gguf, ft.path / "peft")
    with torch.no_grad():
        tuned_logits = model(torch.tensor([ids])).logits[0, -1].numpy()
        with model.disable_adapter():
            base_logits = model(torch.tensor([ids])).logits[0, -1].numpy()
    return prompt, ids, tuned_logits, base_logits


@pytest.mark.slow
def test_llama_cpp_adapter_gives_the_peft_models_logits(tuned, peft_logits):
    import llama_cpp

    from ragnb.finetune._base import base_model
    from ragnb.generate.llamacpp import without_extra_buffers

    ft, _ = tuned
    prompt, ids, peft_tuned, peft_base = peft_logits
    llama = {}
    for tuned_side, lora in ((False, None), (True, str(ft.adapter_gguf))):
        with without_extra_buffers(llama_cpp):  # the AMX workaround ragnb's backend applies
            llm = llama_cpp.Llama(
                str(base_model("default")[1]),
                n_ctx=256,
                n_threads=1,
                logits_all=True,
                verbose=False,
                lora_path=lora,
            )
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        llama[tuned_side] = np.array(llm.scores[len(ids) - 1])
        del llm
    # what the adapter changes, llama.cpp changes the same way
    assert _cosine(llama[True] - llama[False], peft_tuned - peft_base) > 0.99
    assert _cosine(llama[True], peft_tuned) > 0.995
    assert int(llama[True].argmax()) == int(peft_tuned.argmax())


@pytest.mark.slow
def test_mlx_adapter_gives_the_peft_models_logits(tuned, peft_logits):
    pytest.importorskip("mlx_lm")
    import mlx.core as mx
    from mlx_lm import load as mlx_load

    from ragnb.finetune._base import base_model
    from ragnb.generate.convert import mlx_folder

    ft, _ = tuned
    _, ids, peft_tuned, peft_base = peft_logits
    assert ft.mlx_adapter is not None and (ft.mlx_adapter / "adapters.safetensors").is_file()
    folder = mlx_folder(base_model("default")[1])
    mlx = {}
    for tuned_side, adapter in ((False, None), (True, str(ft.mlx_adapter))):
        model, _ = mlx_load(str(folder), adapter_path=adapter)
        mlx[tuned_side] = np.array(model(mx.array([ids]))[0, -1].astype(mx.float32))
    assert _cosine(mlx[True] - mlx[False], peft_tuned - peft_base) > 0.99
    assert int(mlx[True].argmax()) == int(peft_tuned.argmax())


# ---------------------------------------------------------------------------- MLX engine


@pytest.fixture(scope="module")
def tiny_mlx_model(tmp_path_factory):
    """A randomly initialised 2-layer llama in mlx-lm's folder layout, with SmolLM2's tokenizer."""
    pytest.importorskip("mlx_lm")
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    from ragnb.finetune import torch_engine
    from ragnb.finetune._base import base_model

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
        "rope_theta": 10000.0,
        "max_position_embeddings": 512,
    }
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(config))
    torch_engine.load_tokenizer(base_model("default")[1]).save_pretrained(str(folder))
    return folder


@pytest.mark.slow
def test_mlx_engine_trains_resumes_and_its_adapter_generates(tiny_mlx_model, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    pairs = PAIRS.head(2)
    options = dict(
        model=str(tiny_mlx_model),
        engine="mlx",
        mlx_model_dir=tiny_mlx_model,
        steps=6,
        learning_rate=1e-2,
        batch_size=2,
        save_every=2,
        name="tiny",
        progress=False,
    )

    def stop_at_3(step, steps, loss):
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        ragnb.finetune.train(pairs, callbacks=[stop_at_3], **options)
    ft = ragnb.finetune.train(pairs, resume=True, **options)
    m = ft.manifest
    assert m["engine"] == "mlx" and m["resumed_from_step"] == 2
    assert len(m["losses"]) == 6 and m["losses"][-1] < m["losses"][0]
    assert (ft.mlx_adapter / "adapters.safetensors").is_file()
    assert json.loads((ft.mlx_adapter / "adapter_config.json").read_text())["num_layers"] == 2

    from ragnb.generate import load
    from ragnb.generate.base import SamplingParams

    backend = load(ft, backend="mlx")
    chunks = list(
        backend.stream(
            backend.format_chat([{"role": "user", "content": "Hi"}]), SamplingParams(max_tokens=4)
        )
    )
    assert chunks[-1].generation_tokens >= 1


@pytest.mark.slow
def test_training_prompt_is_the_pipelines_closed_book_prompt():
    from ragnb.finetune import torch_engine
    from ragnb.finetune._base import base_model

    question = FACTS[2][0]
    answer = ragnb.RAG(None, backend="llamacpp").ask(question, use_retrieval=False, max_tokens=1)
    tokenizer = torch_engine.load_tokenizer(base_model("default")[1])
    ids, labels = torch_engine.encode_pair(tokenizer, question, FACTS[2][1], max_length=256)
    n_prompt = labels.count(torch_engine.IGNORE)
    assert tokenizer.decode(ids[:n_prompt]) == answer.prompt
    assert tokenizer.decode(ids[n_prompt:]) == FACTS[2][1] + tokenizer.eos_token


# ---------------------------------------------------------------------------- paraphrases


def test_paraphrases_must_be_a_count():
    with pytest.raises(InputError, match="paraphrases=-1"):
        data.paraphrase_rows([("Q?", "A.")], -1)
    assert data.paraphrase_rows([("Q?", "A.")], 0) == []


@pytest.mark.slow
def test_train_with_paraphrases_rewords_each_question_repeatably_and_keeps_them(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path))
    rows = [(q, a) for q, a, _ in FACTS[:2]]
    first = data.paraphrase_rows(rows, 2, seed=3)
    # the local model wrote them: new wordings, the original answer, a link to the original
    assert first and all(r["question"].endswith("?") for r in first)
    assert all(r["question"] != r["paraphrase_of"] for r in first)
    assert {(r["paraphrase_of"], r["answer"]) for r in first} <= set(rows)
    assert len({r["question"] for r in first}) == len(first) <= 4
    # the same seed gives the same rewordings, also without the cache
    for cached in (tmp_path / "paraphrases").glob("*.jsonl"):
        cached.unlink()
    assert data.paraphrase_rows(rows, 2, seed=3) == first
    ft = ragnb.finetune.train(
        pl.DataFrame(rows, schema=["question", "answer"], orient="row"),
        paraphrases=2,
        seed=3,
        steps=1,
        batch_size=2,
        max_length=64,
        progress=False,
        plot=False,
    )
    m = ft.manifest
    assert m["hyperparameters"]["paraphrases"] == 2
    assert (m["n_original_pairs"], m["n_paraphrases"]) == (2, len(first))
    assert m["n_pairs"] == 2 + len(first)
    kept = [json.loads(line) for line in (ft.path / "paraphrases.jsonl").read_text().splitlines()]
    assert kept == first
