"""Issue #13: every hole found by hostile and careless use, reproduced and kept closed.

One test (or a few) per item of the issue, in its order; then the property-based tests
(hypothesis) of the --where parser, the magic argument parsing and the loaders, and the
corruption matrix of KnowledgeBase.load. Each test failed on the code before its fix.
"""

from __future__ import annotations

import json
import re
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


# ---------------------------------------------------------------- magics in a real IPython shell

HOSTILE_DOCS = pl.DataFrame(
    {
        "name": ["pin.md", "template.md", "colour.md"],
        "body": [
            "Set the pin code with the keypad. The pin is four digits.",
            "Template placeholder {word} here, with the pin left blank.",
            "Colour \x1b[31mred\x1b[0m text \x1b]0;pwned title\x07 and a bell\x07 for the pin.",
        ],
        "heading": ["Pin \x1b[2J", "Template", "Colour"],
    }
).rename({"heading": "label"})


@pytest.fixture(scope="module")
def ip():
    """The real IPython shell with the extension loaded and a BM25-only knowledge base `hkb`
    (addressed with --kb, so other test modules' current knowledge base is left alone)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "ragnb")
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(HOSTILE_DOCS, text="body", id="name", title="label")
    shell.user_ns["hkb"] = kb
    return shell


def _line(ip, text: str):
    return ip.run_line_magic("rag", text)


def _doc_ids(ip, name: str = "h") -> set[str]:
    return set(ip.user_ns[name]["doc_id"].to_list())


# ---------------------------------------------------------------- 2. no IPython expansion


def test_braces_on_the_magic_line_never_run_code(ip, tmp_path):
    from IPython.core.error import UsageError

    target = tmp_path / "written"
    hostile = f"{{open({str(target)!r}, 'w').write('y')}}"
    with pytest.raises(UsageError):
        _line(ip, f'search pin --kb hkb --where "{hostile}"')
    with pytest.raises(UsageError):
        ip.run_cell_magic("rag", f'--kb hkb --where "{hostile}"', "What is the pin?")
    assert not target.exists()


def test_regex_braces_and_interpolation_switches_reach_ragnb(ip):
    from IPython.core.error import UsageError

    ip.user_ns["word"] = "pin"
    contains = "--where \"text.str.contains('{word}', literal=True)\""
    _line(ip, f"search pin --kb hkb --out h {contains}")
    assert _doc_ids(ip) == {"pin.md", "template.md", "colour.md"}  # 'pin' is in all three
    _line(ip, f"search pin --kb hkb --out h --no-interpolate {contains}")
    assert _doc_ids(ip) == {"template.md"}  # the literal {word}
    _line(ip, "search pin --kb hkb --out h --where \"text.str.contains('{{word}}', literal=True)\"")
    assert _doc_ids(ip) == {"template.md"}
    # a regex repetition e{2} arrives intact (IPython made it e2), also on the %%rag line
    with pytest.raises(UsageError, match=r"e\{2\}"):
        ip.run_cell_magic("rag", "--kb hkb --where \"text.str.contains('e{2}') & nope\"", "Q?")


# ---------------------------------------------------------------- 5. empty source


def test_adding_an_empty_string_never_indexes_the_working_directory(ip, tmp_path, monkeypatch):
    from IPython.core.error import UsageError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "private.md").write_text("# Private\nnot to be indexed")
    kb = ragnb.KnowledgeBase(embedder=None)
    for empty in ("", "   "):
        with pytest.raises(InputError, match="empty"):
            kb.add(empty)
    assert len(kb) == 0
    ip.user_ns["hempty"] = kb
    ip.user_ns["v"] = ""
    with pytest.raises(UsageError, match="empty"):
        _line(ip, "add v --kb hempty")
    assert len(kb) == 0


# ---------------------------------------------------------------- 9. --where limits


@pytest.mark.parametrize(
    "where",
    [
        "position > 1/0",
        "not " * 1000 + "position > 1",
        "~" * 1500 + "(position > 1)",
        "text == 'a' * 100000000000",
        "text == 'a' * 3000000000",
        "-'abc' == text",
        "text.str == 'a'",
        "position == text.str",
        "x" * 5000,
    ],
)
def test_hostile_where_is_one_input_error(where):
    from ragnb.filters import parse_where

    with pytest.raises(InputError) as caught:
        parse_where(where, ["text", "position"])
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 600


# ---------------------------------------------------------------- 10. one bad file


def test_one_bad_file_never_stops_a_folder(tmp_path):
    from ragnb.corpus.loaders import LoaderWarning

    (tmp_path / "good.md").write_text("# Good\nThe valve is teal.")
    (tmp_path / "deep.py").write_text("x = " + "-" * 100_000 + "1\n")  # MemoryError in ast
    (tmp_path / "cells.ipynb").write_text(json.dumps({"cells": [1, "two"], "metadata": []}))
    (tmp_path / "nested.ipynb").write_text("[" * 100_000 + "]" * 100_000)  # RecursionError
    kb = ragnb.KnowledgeBase(embedder=None)
    with pytest.warns(LoaderWarning) as caught:
        kb.add(tmp_path)
    assert set(kb.chunks["doc_id"]) == {"good.md", "deep.py"}  # deep.py is kept as plain text
    skipped = " ".join(str(w.message) for w in caught)
    assert "cells.ipynb" in skipped and "nested.ipynb" in skipped


# ---------------------------------------------------------------- 11. POSIX splitting


def test_subcommand_arguments_are_split_the_posix_way(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _line(ip, "save 'my kb' --kb hkb")
    assert (tmp_path / "my kb" / "manifest.json").is_file()
    assert not list(tmp_path.glob("'*"))
    _line(ip, 'load "my kb" --name hkb_copy')
    magics = ip.magics_manager.registry["RagMagics"]
    assert len(magics.kbs["hkb_copy"]) == len(ip.user_ns["hkb"])


# ---------------------------------------------------------------- 12. Ctrl-C outside streaming


@pytest.fixture
def ctrl_c_after_first_token(monkeypatch):
    """Send this process a real SIGINT once the model has produced its first token."""
    import signal

    from ragnb.generate.llamacpp import LlamaCppBackend

    generate = LlamaCppBackend._generate

    def interrupted(self, tokens, params):
        for n, chunk in enumerate(generate(self, tokens, params)):
            if n == 1:
                signal.raise_signal(signal.SIGINT)
            yield chunk

    monkeypatch.setattr(LlamaCppBackend, "_generate", interrupted)


@pytest.mark.slow
@pytest.mark.parametrize("options", ["--no-stream", "--compare --closed-book"])
def test_ctrl_c_without_streaming_is_one_line(ip, capfd, ctrl_c_after_first_token, options):
    from IPython.core.error import UsageError

    capfd.readouterr()
    result = ip.run_cell(f"%%rag {options} --kb hkb --max-tokens 64\nWhat is the pin?")
    out, err = capfd.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    # a progress bar may stand before it on the same line, ended by its own carriage return
    errors = [ln for ln in re.split(r"[\r\n]", out + err) if "Error" in ln]
    assert errors == [f"UsageError: {result.error_in_exec}"]
    assert "interrupted" in errors[0]


# ---------------------------------------------------------------- 13. options and text/plain


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--temperature nan", "finite"),
        ("--temperature inf", "finite"),
        ("--temperature=-inf", "negative"),
        ("--out 1bad", "not a variable name"),
        ("--out class", "not a variable name"),
        ("--max-tokens 100000", r"use max_tokens=\d+ or less"),
    ],
)
def test_bad_sampling_options_are_one_line(ip, options, message):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=message) as caught:
        ip.run_cell_magic("rag", f"--kb hkb {options}", "What is the pin?")
    assert "\n" not in str(caught.value) and "-9" not in str(caught.value)
    assert "1bad" not in ip.user_ns


def test_terminal_escapes_never_reach_text_plain(ip):
    table = _line(ip, "search colour bell --kb hkb --k 3")
    shown = [ip.display_formatter.format(table)[0]["text/plain"], repr(table)]
    # an extractive answer quotes the document itself: text, evidence and source title
    answer = ragnb.RAG(ip.user_ns["hkb"]).ask(
        "What colour is the red text?", answer_mode="extractive", k=3
    )
    assert "\x1b[31m" in answer.text  # the data keeps what the document holds ...
    shown.append(ip.display_formatter.format(answer)[0]["text/plain"])
    assert "colour.md" in shown[0] and "red" in shown[2]
    for text in shown:
        assert "\x1b" not in text and "\x07" not in text  # ... the terminal never sees it


# ---------------------------------------------------------------- 3. KnowledgeBase.load checks


class BagOfWords:
    """A small real embedder: hashed bag of words, 32 dimensions, counting what it embeds."""

    name = "bow-32"
    dim = 32

    def __init__(self):
        self.texts: list[str] = []

    def embed(self, texts):
        import zlib

        import numpy as np

        self.texts.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, zlib.crc32(word.encode()) % self.dim] += 1
        return out


FACTS = [
    "The Zorblax valve is teal and opens with a quarter turn.",
    "Descale the Quindle pump monthly with white vinegar.",
    "The Ostrel reset code is 4471; hold RESET for six seconds.",
    "The Fennick works is in Glimmerford, north of the river.",
    "Warranty: two years of household use, receipts required.",
    "Pair the remote by holding MODE until the light blinks blue.",
]
QUERIES = ["reset code", "teal valve", "warranty receipts", "remote light blue"]


def _built_kb() -> ragnb.KnowledgeBase:
    kb = ragnb.KnowledgeBase(embedder=BagOfWords(), chunk_size=200, chunk_overlap=0)
    kb.add(pl.DataFrame({"doc_id": [f"d{i}" for i in range(6)], "text": FACTS}), id="doc_id")
    kb.embed()
    return kb


def _answers(kb) -> list:
    return [
        kb.search(q, k=3, mode=mode)[["chunk_id", "score"]].rows()
        for q in QUERIES
        for mode in ("bm25", "dense")
    ]


@pytest.fixture(scope="module")
def saved_kb(tmp_path_factory):
    """A saved knowledge base with vectors and a BM25 matrix, and what it answers."""
    kb = _built_kb()
    folder = kb.save(tmp_path_factory.mktemp("saved") / "kb")
    return folder, kb.chunks, _answers(kb)


def _rewrite_npy(path, change):
    import numpy as np

    np.save(path, change(np.load(path)), allow_pickle=False)


def _rewrite_json(path, change):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _reverse_parquet(path):
    pl.read_parquet(path).reverse().write_parquet(path)


def _file_cases(names):
    """(file, how) for every saved file: damaged in each way a disk, a copy or a hand can."""
    import os

    def truncate(p):
        p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)])

    def garbage(p):
        p.write_bytes(os.urandom(p.stat().st_size))

    def empty(p):
        p.write_bytes(b"")

    def missing(p):
        p.unlink()

    def device(p):
        p.unlink()
        p.symlink_to("/dev/zero")

    def fifo(p):
        p.unlink()
        os.mkfifo(p)

    def folder(p):
        p.unlink()
        p.mkdir()

    hows = [truncate, garbage, empty, missing, device, fifo, folder]
    return [(name, how) for name in names for how in hows]


def _semantic_cases():
    """(file, how): well-formed files holding the wrong thing."""
    import numpy as np

    def rows_reversed(a):
        return a[::-1].copy()

    return [
        ("chunks.parquet", _reverse_parquet),
        ("chunks.parquet", lambda p: pl.read_parquet(p).drop("text").write_parquet(p)),
        (
            "chunks.parquet",
            lambda p: (
                pl.read_parquet(p).with_columns(pl.col("position").cast(pl.String)).write_parquet(p)
            ),
        ),
        (
            "chunks.parquet",
            lambda p: (
                pl.read_parquet(p)
                .with_columns(pl.col("text").str.replace("teal", "red"))
                .write_parquet(p)
            ),
        ),
        ("embeddings.npy", lambda p: _rewrite_npy(p, rows_reversed)),
        ("embeddings.npy", lambda p: _rewrite_npy(p, lambda a: a[:, :16].copy())),  # wrong dim
        ("embeddings.npy", lambda p: _rewrite_npy(p, lambda a: a.astype(np.float64))),
        ("embeddings.npy", lambda p: _rewrite_npy(p, lambda a: np.full_like(a, np.nan))),
        ("embeddings.npy", lambda p: _rewrite_npy(p, lambda a: a * 3)),
        ("embedded.npy", lambda p: _rewrite_npy(p, lambda a: a.astype(np.int64))),
        ("text_keys.npy", lambda p: _rewrite_npy(p, rows_reversed)),
        ("text_keys.npy", lambda p: _rewrite_npy(p, lambda a: a[:, :10].copy())),
        ("title_indexed.npy", lambda p: _rewrite_npy(p, lambda a: ~a)),
        ("bm25_term_ids.npy", lambda p: _rewrite_npy(p, lambda a: a + 10_000)),
        ("bm25_term_ids.npy", lambda p: _rewrite_npy(p, lambda a: -a - 1)),
        ("bm25_term_ids.npy", lambda p: _rewrite_npy(p, rows_reversed)),
        ("bm25_row_offsets.npy", lambda p: _rewrite_npy(p, rows_reversed)),
        ("bm25_matrix_indices.npy", lambda p: _rewrite_npy(p, lambda a: a + 1_000_000)),
        ("bm25_matrix_indices.npy", lambda p: _rewrite_npy(p, lambda a: -a - 1)),
        ("bm25_matrix_indptr.npy", lambda p: _rewrite_npy(p, lambda a: a * 7 + 3)),
        ("bm25_matrix_data.npy", lambda p: _rewrite_npy(p, rows_reversed)),
        ("bm25_vocab.json", lambda p: _rewrite_json(p, lambda v: list(v))),
        ("bm25_vocab.json", lambda p: _rewrite_json(p, lambda v: {k: 0 for k in v})),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: [m])),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: {**m, "counts": "six"})),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: {**m, "chunking": [200, 0]})),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: {**m, "embedder": "bow-32"})),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: {**m, "bm25": {"k1": "x"}})),
        ("manifest.json", lambda p: _rewrite_json(p, lambda m: {**m, "format_version": "1"})),
        (
            "manifest.json",
            lambda p: _rewrite_json(p, lambda m: {**m, "bm25_arrays": ["../../etc/passwd"]}),
        ),
        (
            "manifest.json",
            lambda p: _rewrite_json(
                p, lambda m: {**m, "files": {**m["files"], "../x.npy": "sha256:0"}}
            ),
        ),
    ]


SAVED_FILES = [
    "manifest.json",
    "chunks.parquet",
    "bm25_term_ids.npy",
    "bm25_row_offsets.npy",
    "bm25_matrix_data.npy",
    "bm25_matrix_indices.npy",
    "bm25_matrix_indptr.npy",
    "bm25_vocab.json",
    "text_keys.npy",
    "title_indexed.npy",
    "embeddings.npy",
    "embedded.npy",
]
CASES = _file_cases(SAVED_FILES) + _semantic_cases()


def _load_or_one_line_error(folder, original_chunks, original_answers) -> str:
    """Load `folder`: either one InputError (returned as "error"), or a knowledge base equal
    to the one saved (returned as "same"). Anything else fails the test."""
    import shutil as _shutil

    try:
        kb = ragnb.KnowledgeBase.load(folder, embedder=BagOfWords())
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 800, message
        return "error"
    finally:
        _shutil.rmtree(folder, ignore_errors=True)
    assert kb.chunks.equals(original_chunks)
    assert _answers(kb) == original_answers
    return "same"


# Without digests (a save from before they were recorded) a well-formed vectors file is
# trusted, and the last case edits the digests themselves: those pairs are not run.
MATRIX = [
    pytest.param(digests, name, how, id=f"{tag}-{name}-{getattr(how, '__name__', 'x')}")
    for digests, tag in ((True, "digests"), (False, "no-digests"))
    for name, how in CASES
    if digests
    or not (
        (name == "embeddings.npy" and how.__name__ == "<lambda>")
        or (name == "manifest.json" and how is CASES[-1][1])
    )
]


@pytest.mark.parametrize(("digests", "name", "how"), MATRIX)
def test_corrupted_save_is_one_input_error_or_the_same_knowledge_base(
    saved_kb, tmp_path, digests, name, how
):
    import shutil

    folder, chunks, answers = saved_kb
    copy = tmp_path / "kb"
    shutil.copytree(folder, copy)
    if not digests:  # checked structurally only
        _rewrite_json(
            copy / "manifest.json", lambda m: {k: v for k, v in m.items() if k != "files"}
        )
    how(copy / name)
    outcome = _load_or_one_line_error(copy, chunks, answers)
    # with digests every damage is found; without, a harmless one may load (the score matrix
    # is then rebuilt from the term ids rather than read), but never as a different result
    assert outcome == "error" or not digests


# ---------------------------------------------------------------- 4. save never deletes yours


def _small_kb(text: str = "The Zorblax valve is teal.") -> ragnb.KnowledgeBase:
    return ragnb.KnowledgeBase(embedder=None).add(text, id="zorblax")


def test_save_never_replaces_a_folder_holding_a_users_file(tmp_path):
    target = tmp_path / "kb"
    _small_kb().save(target)
    (target / "notes.txt").write_text("precious")
    (target / "extra.json").write_text("{}")
    with pytest.raises(InputError, match="a save did not write"):
        _small_kb("Another text.").save(target)
    assert (target / "notes.txt").read_text() == "precious"
    assert ragnb.KnowledgeBase.load(target).chunks["text"][0] == "The Zorblax valve is teal."


def test_save_to_the_empty_working_directory_keeps_it(tmp_path, monkeypatch):
    here = tmp_path / "project"
    here.mkdir()
    monkeypatch.chdir(here)
    inode = here.stat().st_ino
    _small_kb().save(".")
    assert here.is_dir() and here.stat().st_ino == inode  # the same folder, not a new one
    assert len(ragnb.KnowledgeBase.load(".")) == 1
    with pytest.raises(InputError, match="working directory"):
        _small_kb("Another text.").save(".")
    assert ragnb.KnowledgeBase.load(".").chunks["text"][0] == "The Zorblax valve is teal."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_recovery_loads_the_newest_old_copy_and_saves_clean_up(tmp_path):
    import os
    import time

    target = tmp_path / "kb"
    # two copies a crash left aside, from an older ragnb: random names, the newer sorts first
    for name, text, age in (("ffffffff", "stale copy", 200), ("00000000", "newest copy", 100)):
        folder = tmp_path / f".kb.old-{name}"
        _small_kb(text).save(folder)
        past = time.time() - age
        for path in (folder, *folder.iterdir()):
            os.utime(path, (past, past))
    (tmp_path / ".kb.saving-1a2b3c4d").mkdir()  # a save killed before its swap
    os.utime(tmp_path / ".kb.saving-1a2b3c4d", (time.time() - 300,) * 2)
    with pytest.warns(Warning, match="interrupted save"):
        assert ragnb.KnowledgeBase.load(target).chunks["text"][0] == "newest copy"
    _small_kb("fresh").save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]  # leftovers removed


# ---------------------------------------------------------------- 6. threads


def test_searches_stay_right_while_another_thread_adds_and_removes():
    import threading

    import numpy as np

    embedder = BagOfWords()
    kb = ragnb.KnowledgeBase(embedder=embedder, chunk_size=200, chunk_overlap=0)
    stable = pl.DataFrame(
        {"doc_id": [f"s{i}" for i in range(20)], "text": [f"zq{i}x stable note" for i in range(20)]}
    )
    kb.add(stable, id="doc_id").embed()
    errors: list[str] = []
    done = threading.Event()

    def mutate():
        try:
            for round_ in range(60):
                ids = [f"f{round_}-{j}" for j in range(15)]
                texts = [f"filler {round_} {j} words" for j in range(15)]
                kb.add(pl.DataFrame({"doc_id": ids, "text": texts}), id="doc_id")
                kb.remove(ids[::2])
                if round_ % 3:
                    kb.remove(ids[1::2])
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(f"mutate: {type(exc).__name__}: {exc}")
        finally:
            done.set()

    def search(seed: int):
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                i = int(rng.integers(20))
                hits = kb.search(f"zq{i}x", k=3, mode="bm25")
                if hits["doc_id"][0] != f"s{i}" or f"zq{i}x" not in hits["text"][0]:
                    errors.append(f"bm25 top hit for s{i}: {hits['doc_id'][0]}")
                hits = kb.search(f"zq{i}x stable", k=3, mode="dense")
                query = embedder.embed([f"zq{i}x stable"])[0]
                for text, score in hits.select("text", "dense_score").iter_rows():
                    vector = embedder.embed([text])[0]
                    cosine = vector @ query / np.linalg.norm(vector) / np.linalg.norm(query)
                    if abs(cosine - score) > 1e-4:
                        errors.append(f"dense score {score} for a text whose cosine is {cosine}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"search: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=mutate)] + [
        threading.Thread(target=search, args=(seed,)) for seed in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(kb.documents["doc_id"]) >= set(stable["doc_id"])


# ---------------------------------------------------------------- 7. metadata types


def test_a_metadata_type_clash_is_an_error_not_a_cast():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(pl.DataFrame({"id": ["a"], "text": ["Alpha valve notes."], "year": [2020]}), id="id")
    with pytest.raises(InputError, match=r"'year' holds Int64 values.*String such as 'unknown'"):
        kb.add(pl.DataFrame({"id": ["b"], "text": ["Beta notes."], "year": ["unknown"]}), id="id")
    with pytest.raises(InputError, match="'year' holds Int64"):
        kb.add("Gamma notes.", id="c", metadata={"year": "n/a"})
    kb.add(pl.DataFrame({"id": ["d"], "text": ["Delta notes."], "year": [None]}), id="id")
    assert kb.chunks.schema["year"] == pl.Int64  # missing values are fine, the type is kept
    hits = kb.search("notes", mode="bm25", where=pl.col("year") > 2000)
    assert hits["doc_id"].to_list() == ["a"]


# ---------------------------------------------------------------- 8. each distinct text once


def test_each_distinct_text_is_embedded_once(tmp_path):
    (tmp_path / "one-line.txt").write_text("the same words again and again " * 6000)  # 180 kB
    embedder = BagOfWords()
    kb = ragnb.KnowledgeBase(embedder=embedder)
    kb.add(tmp_path / "one-line.txt")
    distinct = kb.chunks["text"].n_unique()
    assert len(kb) > 20 * distinct  # hundreds of chunks, a few distinct texts
    kb.embed()
    assert len(embedder.texts) == len(set(embedder.texts)) <= distinct
    assert kb.search("words again", k=3, mode="dense").height == 3


# ---------------------------------------------------------------- 13. careless inputs to kb


def test_careless_inputs_to_the_knowledge_base_are_one_line_errors():
    pd = pytest.importorskip("pandas")
    kb = ragnb.KnowledgeBase(embedder=None).add("The valve is teal.", id="valve")
    bad = [
        lambda: kb.add(pd.DataFrame([["a", "b"]], columns=["text", "text"])),
        lambda: kb.add(pd.DataFrame({"text": ["bad \ud800 text"]})),
        lambda: kb.add("lone \udcff surrogate"),
        lambda: kb.add("fine text", id="bad\udc80id"),
        lambda: kb.search("valve \ud800"),
        lambda: ragnb.RAG(kb).ask("q \ud800", use_retrieval=False),
        lambda: kb.remove(5),
        lambda: kb.remove([None]),
    ]
    for attempt in bad:
        with pytest.raises(InputError) as caught:
            attempt()
        assert "\n" not in str(caught.value)
    assert kb.chunks["doc_id"].to_list() == ["valve"]  # nothing lost, nothing half-added


# ---------------------------------------------------------------- 14. and SearchSettings values


def test_search_settings_of_the_wrong_type_are_one_line_errors():
    kb = ragnb.KnowledgeBase(embedder=None).add("The valve is teal.", id="valve")
    for options in ({"alpha": "x"}, {"weights": "ab"}, {"k": "3"}, {"mode": 5}, {"alpha": 2.0}):
        with pytest.raises(InputError) as caught:
            kb.search("valve", **options)
        assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_a_bm25_only_knowledge_base_answers_without_naming_a_mode():
    kb = ragnb.KnowledgeBase(embedder=None).add("The Zorblax valve is teal.", id="valve")
    answer = ragnb.RAG(kb).ask("What colour is the Zorblax valve?", max_tokens=4)
    assert answer.mode == "bm25" and answer.hits["doc_id"][0] == "valve"


# ---------------------------------------------------------------- property-based (hypothesis)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# bounded and repeatable: the same examples on every run (CI), a few seconds each
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
WHERE_COLUMNS = ["text", "position", "year", "lang"]
WHERE_FRAME = pl.DataFrame(
    {
        "text": ["alpha", "beta", None],
        "position": [0, 1, 2],
        "year": [2019, 2024, None],
        "lang": ["en", "de", "fr"],
    }
)

_atoms = st.one_of(
    st.sampled_from(WHERE_COLUMNS + ['pl.col("year")', 'col("lang")', "pl.lit(3)", "nope"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8).map(repr),
    st.sampled_from(["None", "True", "[1, 2]", "('en', 'de')", "{}", "x.y", "__import__"]),
)


def _where_text(children):
    binary = st.sampled_from(
        [
            " == ",
            " != ",
            " < ",
            " >= ",
            " and ",
            " or ",
            " & ",
            " | ",
            " + ",
            " - ",
            " * ",
            " / ",
            " % ",
            " ** ",
            " // ",
            " in ",
            " is ",
            " if 1 else ",
        ]
    )
    methods = st.sampled_from(
        [
            ".is_in([1, 2])",
            ".is_null()",
            ".str.contains('a')",
            ".str.len_chars()",
            ".abs()",
            ".map_elements(print)",
            ".str",
            ".is_between(1, 'x')",
            "()",
            "[0]",
            ".__class__",
        ]
    )
    return st.one_of(
        st.tuples(children, binary, children).map("".join),
        st.tuples(st.sampled_from(["not ", "~", "-", "+", "("]), children).map(
            lambda t: t[0] + t[1] + (")" if t[0] == "(" else "")
        ),
        st.tuples(children, methods).map("".join),
        st.tuples(st.just("lambda: "), children).map("".join),
    )


WHERE_TEXTS = st.one_of(
    st.recursive(_atoms, _where_text, max_leaves=12),
    st.text(max_size=60),
    st.integers(1, 3000).map(lambda n: "not " * n + "year > 1"),
)


@BOUNDED
@given(WHERE_TEXTS)
def test_where_text_is_a_filter_or_one_input_error(text):
    """Any text: a polars expression that filters the frame, or one InputError line."""
    from ragnb.filters import parse_where

    try:
        expr = parse_where(text, WHERE_COLUMNS)
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        return
    try:
        WHERE_FRAME.filter(expr)
    except pl.exceptions.PolarsError:
        pass  # e.g. text > 3: kb.search turns this into "where= filter failed" (an InputError)


_ARG_PIECES = st.one_of(
    st.sampled_from(
        [
            "--k",
            "3",
            "--mode",
            "bm25",
            "--kb",
            "hkb",
            "--out",
            "1bad",
            "--where",
            "'",
            '"',
            "{word}",
            "{{word}}",
            "{open('w', 'w')}",
            "$word",
            "--no-interpolate",
            "--help",
            "\\",
            "'my kb'",
            '"a b"',
            "--",
            "-",
            "--alpha",
            "nan",
            "--temperature",
            "inf",
            "\n",
        ]
    ),
    st.text(max_size=10),
)
SUBCOMMAND_LINES = st.tuples(
    st.sampled_from(["search", "remove", "use", "status", "frobnicate", ""]),
    st.lists(_ARG_PIECES, max_size=8),
).map(lambda t: " ".join([t[0], *t[1]]))


@BOUNDED
@given(SUBCOMMAND_LINES)
def test_any_magic_line_is_a_result_or_one_usage_error(ip, tmp_path_factory, line):
    """Whatever follows %rag: a result, or one UsageError line; no code runs (the working
    directory stays empty) and the knowledge base keeps its documents."""
    import contextlib
    import io
    import os

    from IPython.core.error import UsageError

    before = ip.user_ns["hkb"].chunks
    here = tmp_path_factory.mktemp("cwd")
    previous = os.getcwd()
    os.chdir(here)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _line(ip, line)
    except UsageError as exc:
        assert "\n" not in str(exc)
    finally:
        os.chdir(previous)
        ip.magics_manager.registry["RagMagics"].current = "default"
    assert list(here.iterdir()) == []
    assert ip.user_ns["hkb"].chunks.equals(before)


@BOUNDED
@given(st.lists(st.text(max_size=12), max_size=6))
def test_options_split_the_posix_way_and_interpolate_names_only(ip, words):
    """The %%rag options parser: each argument is what a POSIX shell gives, then only {name}
    placeholders of user variables change."""
    import shlex

    from IPython.core.error import UsageError

    magics = ip.magics_manager.registry["RagMagics"]
    ip.user_ns["word"] = "pin"
    line = " ".join(["--models", shlex.quote(" ".join(words)), "--kb", "hkb"])
    try:
        args = magics._parse(magics.rag.parser, line)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    from ragnb._magic_parse import interpolate

    assert args.models == interpolate(" ".join(words), ip.user_ns) and args.kb == "hkb"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["cells", "source", "cell_type", "metadata", "x"]), children
        )
    ),
    max_leaves=20,
)


_NAMES = st.sampled_from(["a.md", "b.txt", "c.rst", "d.html", "e.ipynb", "f.py", "g.pdf", "h"])
FILES = st.one_of(
    st.tuples(_NAMES, st.binary(max_size=2000)),
    st.tuples(_NAMES, st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass"))),
    st.tuples(_NAMES, _JSON.map(lambda v: json.dumps(v).encode())),
    st.tuples(
        st.just("nb.ipynb"),
        st.lists(_JSON, max_size=4).map(lambda cells: json.dumps({"cells": cells}).encode()),
    ),
    st.tuples(
        st.sampled_from(["deep.ipynb", "deep.py"]),
        st.integers(1, 5000).map(lambda n: ("[" * n + "]" * n).encode()),
    ),
    st.tuples(
        st.just("deep.py"),
        st.integers(1, 200_000).map(lambda n: ("x = " + "-" * n + "1").encode()),
    ),
    st.tuples(st.just("deep.html"), st.integers(1, 3000).map(lambda n: ("<div>" * n).encode())),
)


@BOUNDED
@given(FILES)
def test_any_file_loads_or_is_skipped_with_a_warning(tmp_path_factory, file):
    """Random bytes, random nesting, random Unicode: a Document, or None with a LoaderWarning;
    never an exception (one bad file must never stop a folder)."""
    import warnings

    from ragnb.corpus.loaders import LoaderWarning, load_file

    name, content = file
    path = tmp_path_factory.mktemp("files") / name
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = load_file(path)
    if doc is None:
        assert any(issubclass(w.category, LoaderWarning) for w in caught)
    else:
        assert doc.sections and all(s.text.strip() for s in doc.sections)
        doc.text.encode("utf-8")  # valid Unicode, ready to hash and store


# ---------------------------------------------------------------- the list on a real kernel

NOTEBOOK_SETUP = r"""%load_ext ragnb
import json, os, signal, pathlib
import numpy as np, pandas as pd, polars as pl
import ragnb
from ragnb import KnowledgeBase
kb = KnowledgeBase(embedder=None)
kb.add(pl.DataFrame({"id": ["pin.md", "colour.md"], "text": [
    "Set the pin code with the keypad. The pin is four digits.",
    "Colour \x1b[31mred\x1b[0m text \x1b]0;pwned title\x07 for the pin."]}), id="id")
%rag use kb
v = ""
pathlib.Path("docs").mkdir()
pathlib.Path("docs/good.md").write_text("# Good\nThe valve is teal.")
pathlib.Path("docs/deep.py").write_text("x = " + "-" * 100_000 + "1")
pathlib.Path("docs/cells.ipynb").write_text(json.dumps({"cells": [1, 2]}))
kb.save("saved")
def corrupt(name, change):
    import shutil
    shutil.copytree("saved", name)
    change(pathlib.Path(name))
    return name
corrupt("reordered", lambda p: pl.read_parquet(p / "chunks.parquet").reverse()
        .write_parquet(p / "chunks.parquet"))
corrupt("listmanifest", lambda p: (p / "manifest.json").write_text("[1]"))
def to_device(p):
    (p / "bm25_vocab.json").unlink()
    (p / "bm25_vocab.json").symlink_to("/dev/zero")
corrupt("device", to_device)
pathlib.Path("mine").mkdir()
kb.save("mine/kb")
pathlib.Path("mine/kb/notes.txt").write_text("precious")
before = kb.chunks
"""

# (cell source, expected outcome, a word the one-line message must hold)
HOSTILE_CELLS = [
    ("""%rag search pin --where "{open('pwned1', 'w').write('y')}\"""", "usage", "where"),
    ("""%%rag --where "{open('pwned2', 'w')}"\nWhat is the pin?""", "usage", "where"),
    ("""%rag search pin --where "text.str.contains('e{2}') & nope\"""", "usage", "e{2}"),
    ('%rag search pin --where "position > 1/0"', "usage", "constants"),
    ('%rag search pin --where "' + "not " * 1000 + 'position > 1"', "usage", "characters"),
    ('%rag search pin --where "' + "~" * 1500 + '(position > 1)"', "usage", "nested"),
    ("""%rag search pin --where "text == 'a' * 100000000000\"""", "usage", "constants"),
    ("""%rag search pin --where "text == 'a' * 3000000000\"""", "usage", "constants"),
    ("%rag add v", "usage", "empty"),
    ("%rag search 'unclosed", "usage", "could not read"),
    ("%rag frobnicate", "usage", "not a subcommand"),
    ("%rag remove nosuch.md", "usage", "nosuch.md"),
    ("%rag load /nonexistent", "usage", "no knowledge base"),
    ("%rag load reordered --name broken", "usage", "not a readable"),
    ("%rag load listmanifest --name broken", "usage", "not a readable"),
    ("%rag load device --name broken", "usage", "not a readable"),
    ("%rag use 3x", "usage", "identifier"),
    ("%rag search pin --alpha 2", "usage", "alpha"),
    ("%%rag --alpha x\nWhat is the pin?", "usage", "alpha"),
    ("%%rag --temperature nan\nWhat is the pin?", "usage", "finite"),
    ("%%rag --temperature inf\nWhat is the pin?", "usage", "finite"),
    ("%%rag --out 1bad\nWhat is the pin?", "usage", "variable name"),
    ("%%rag --max-tokens 100000\nWhat is the pin?", "usage", "max_tokens="),
    ("%rag save mine/kb", "usage", "did not write"),
    (
        "from ragnb.generate.llamacpp import LlamaCppBackend\n"
        "_generate = LlamaCppBackend._generate\n"
        "def _interrupting(self, tokens, params):\n"
        "    for n, chunk in enumerate(_generate(self, tokens, params)):\n"
        "        if n == 1:\n"
        "            signal.raise_signal(signal.SIGINT)\n"
        "        yield chunk\n"
        "LlamaCppBackend._generate = _interrupting",
        "ok",
        "",
    ),
    ("%%rag --no-stream --max-tokens 64\nWhat is the pin?", "usage", "interrupted"),
    ("LlamaCppBackend._generate = _generate", "ok", ""),
    ('kb.add("")', "input", "empty"),
    ('kb.add("   ")', "input", "empty"),
    ('kb.add(pd.DataFrame([["a", "b"]], columns=["text", "text"]))', "input", "repeated"),
    ('kb.add("lone \\ud800 surrogate")', "input", "surrogate"),
    ('kb.add("fine text", id="bad\\udc80")', "input", "surrogate"),
    ('kb.search("pin \\udcff")', "input", "surrogate"),
    ("kb.remove(5)", "input", "strings"),
    ('kb.search("pin", alpha="x")', "input", "alpha"),
    ('kb.search("pin", weights="ab")', "input", "weights"),
    (
        'kb2 = KnowledgeBase(embedder=None).add("a", id="a", metadata={"year": 2020})\n'
        'kb2.add("b", id="b", metadata={"year": "unknown"})',
        "input",
        "Int64",
    ),
    ('KnowledgeBase.load("reordered")', "input", "reordered"),
    ('KnowledgeBase.load("listmanifest")', "input", "JSON object"),
    ('KnowledgeBase.load("device")', "input", "regular file"),
    ('kb.save(".")', "input", "not a saved knowledge base"),
    ('kb.save("mine/kb")', "input", "did not write"),
    (
        "import io, torch, uuid\n"
        "from ragnb.finetune.manifest import model_dir\n"
        "class Payload:\n"
        "    def __reduce__(self):\n"
        "        return (io.open, (os.path.abspath('pwned3'), 'w'))\n"
        "run = f'hostile-{uuid.uuid4().hex[:8]}'\n"
        "(model_dir(run) / 'checkpoint').mkdir(parents=True)\n"
        "torch.save(Payload(), model_dir(run) / 'checkpoint' / 'state.pt')\n"
        "ragnb.finetune.train([('Q?', 'A.')], name=run, steps=2, resume=True, progress=False)",
        "input",
        "pickle",
    ),
]

NOTEBOOK_CHECKS = r"""import threading, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    added = KnowledgeBase(embedder=None).add("docs")
table = get_ipython().run_line_magic("rag", "search colour --k 2")
plain = get_ipython().display_formatter.format(table)[0]["text/plain"]
errors = []
def churn():
    for i in range(30):
        kb.add(f"filler {i} text", id=f"f{i}")
        kb.remove(f"f{i}")
def look():
    for _ in range(200):
        hit = kb.search("keypad", k=1, mode="bm25")
        if hit["doc_id"][0] != "pin.md":
            errors.append(hit["doc_id"][0])
threads = [threading.Thread(target=churn), threading.Thread(target=look)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({
    "pwned": sorted(p.name for p in pathlib.Path(".").glob("pwned*")),
    "kept": kb.chunks.equals(before),
    "reloaded": KnowledgeBase.load("saved").chunks.equals(before),
    "notes": pathlib.Path("mine/kb/notes.txt").read_text(),
    "folder_docs": sorted(added.chunks["doc_id"].unique()),
    "skipped": sorted(str(w.message).split(":")[0] for w in caught),
    "escapes": "\x1b" in plain or "\x07" in plain,
    "thread_errors": errors,
    "bm25_only": ragnb.RAG(KnowledgeBase(embedder=None).add("The valve is teal.", id="t"))
        .ask("What colour is the valve?", max_tokens=4).mode,
}))
"""


@pytest.mark.slow
def test_hostile_inputs_on_a_real_kernel(tmp_path):
    """The issue's list run as a notebook on a real Jupyter kernel: every bad input one line
    (a UsageError on stderr from the magics, an InputError from Python), nothing runs that
    was not asked for, nothing is lost or misaligned."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    from ragnb import demo

    sources = [NOTEBOOK_SETUP] + [c for c, _, _ in HOSTILE_CELLS] + [NOTEBOOK_CHECKS]
    notebook = new_notebook(cells=[new_code_cell(source) for source in sources])
    with demo.kernel_manager() as km:
        client = NotebookClient(
            notebook,
            km=km,
            timeout=300,
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        try:
            client.execute()
        finally:
            km.shutdown_kernel()
    setup, *cells, checks = notebook.cells
    assert not [o for o in setup.outputs if o.output_type == "error"], setup.outputs

    one_line_errors = 0
    for cell, (source, expect, word) in zip(cells, HOSTILE_CELLS, strict=True):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        stderr = "".join(o.text for o in cell.outputs if o.get("name") == "stderr")
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        if expect == "ok":
            assert not errors and not lines, (source, cell.outputs)
            continue
        if expect == "usage":  # the magic layer: one line on stderr, no traceback
            assert not errors and len(lines) == 1, (source, cell.outputs)
            assert lines[0].startswith("UsageError: ") and word in lines[0], (source, lines)
        else:  # the Python API: one InputError with a one-line message
            assert len(errors) == 1 and errors[0].ename == "InputError", (source, cell.outputs)
            assert "\n" not in errors[0].evalue and word in errors[0].evalue, errors[0].evalue
        one_line_errors += 1
    assert one_line_errors == len([c for c in HOSTILE_CELLS if c[1] != "ok"])

    report = json.loads(checks.outputs[-1].text)
    assert report["pwned"] == []  # no code ran
    assert report["kept"] and report["reloaded"] and report["notes"] == "precious"
    assert report["folder_docs"] == ["deep.py", "good.md"]  # the bad notebook was skipped
    assert any("cells.ipynb" in s for s in report["skipped"])
    assert report["escapes"] is False and report["thread_errors"] == []
    assert report["bm25_only"] == "bm25"
