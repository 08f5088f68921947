"""The OpenAI-compatible backend against real servers on 127.0.0.1: llama-cpp-python's own
server with the packaged SmolLM2 (chat, completions, embeddings, tokenize), and tiny
http.server instances for what a healthy server never does (500, 429, silence)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import _free_port, _get

import ragnb
import ragnb.embedders
from ragnb.errors import ContextOverflowError, InputError, ModelError
from ragnb.generate import SamplingParams, Served, load
from ragnb.generate.models import resolve_model

pytestmark = pytest.mark.slow

DOCS = pl.DataFrame(
    {
        "doc_id": ["power.md", "display.md"],
        "text": [
            "The Skymere console runs on three AA batteries that last about six months.",
            "The display dims after two minutes without a touch.",
        ],
    }
)
QUESTION = "How long do the batteries last?"


def start_server(log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2 on a free port, one thread
    (through ragnb.generate.serve, which loads llama.cpp as ragnb does on AMX CPUs)."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "ragnb.generate.serve",
        "--model",
        str(resolve_model("default").path),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        *extra,
    ]
    out = log.open("w")
    server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while _get(f"{base}/models") != 200:
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(
                'the llama-cpp-python server did not start (pip install "ragnb[server]"); log: '
                + log.read_text()[-2000:]
            )
        time.sleep(0.3)
    return server, base


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def served_url(tmp_path_factory):
    """One server for the module, with embeddings on (the same instance also generates)."""
    server, base = start_server(tmp_path_factory.mktemp("server") / "log", "--embedding", "true")
    try:
        yield base
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def kb():
    kb = ragnb.KnowledgeBase(embedder=None)
    kb.add(DOCS, text="text", id="doc_id")
    return kb


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and text
    return text


# ---------------------------------------------------------------- answers


def test_streamed_answer_through_rag_is_the_in_process_answer(served_url, kb):
    rag = ragnb.RAG(kb, model="smollm2", base_url=served_url)
    stream = rag.ask(QUESTION, k=2, mode="bm25", stream=True, max_tokens=48)
    chunks = list(stream)
    answer = stream.answer
    # the reference: the same GGUF, greedy, in llama.cpp in this process
    local = ragnb.RAG(kb, model="default", backend="llamacpp")
    reference = local.ask(QUESTION, k=2, mode="bm25", max_tokens=48)

    assert len(chunks) > 3  # one SSE event per token, not one blob
    assert "".join(c.text for c in chunks).strip() == answer.raw_text
    assert answer.backend == "openai" and answer.model == f"smollm2@{served_url[7:-3]}"
    assert chunks[-1].finish_reason in ("stop", "length")
    assert answer.timings["first_token_ms"] > 0 and answer.timings["generation_tokens"] > 0
    assert "six months" in answer.text
    assert answer.raw_text == reference.raw_text
    assert answer.timings["generation_tokens"] == reference.timings["generation_tokens"]
    assert answer.citations["doc_id"].to_list() == reference.citations["doc_id"].to_list()
    assert answer.prompt == reference.prompt  # SmolLM2's template is the ChatML shown


def test_non_streamed_answers_match_the_streamed_one(served_url, kb):
    streaming = ragnb.RAG(kb, model="smollm2", base_url=served_url)
    whole = ragnb.RAG(kb, model=Served("smollm2", base_url=served_url, stream=False))
    a = streaming.ask(QUESTION, k=2, mode="bm25", max_tokens=32)
    stream = whole.ask(QUESTION, k=2, mode="bm25", max_tokens=32, stream=True)
    assert len([c for c in stream if c.text]) == 1  # the whole answer in one piece
    b = stream.answer
    assert whole.backend is not streaming.backend

    assert a.text == b.text  # greedy, same prompt: the transport must not change the answer
    assert b.timings["generation_tokens"] == a.timings["generation_tokens"]
    assert b.citations["doc_id"].to_list() == a.citations["doc_id"].to_list()


def test_completions_endpoint_uses_the_plain_layout(served_url):
    backend = load(Served("smollm2", base_url=served_url, endpoint="completions"))
    prompt = backend.format_chat([{"role": "user", "content": "Name a colour."}])
    assert prompt.endswith("Answer:") and "<|im_start|>" not in prompt
    chunks = list(backend.stream(prompt, SamplingParams(max_tokens=8)))
    assert chunks[-1].finish_reason in ("stop", "length")
    assert chunks[-1].generation_tokens >= 1


def test_token_counts_come_from_the_server_and_match_in_process_llama_cpp(served_url):
    served = load(Served("default", base_url=served_url))
    local = load("default", backend="llamacpp")
    text = "The Skymere console runs on three AA batteries."
    assert served.count_tokens(text) == local.count_tokens(text)
    assert served._counter == "/extras/tokenize"


def test_a_prompt_that_cannot_fit_the_stated_window_fails_before_sending(served_url):
    backend = load(Served("smollm2", base_url=served_url, context_length=64))
    with pytest.raises(ContextOverflowError) as error:
        list(backend.stream("word " * 200, SamplingParams(max_tokens=16)))
    assert "64 tokens" in one_line(error.value)


def test_the_environment_names_the_server_and_its_key(served_url, kb, monkeypatch):
    monkeypatch.setenv("RAGNB_BASE_URL", served_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    rag = ragnb.RAG(kb, model="smollm2")
    assert rag.model == Served("smollm2", base_url=served_url)
    assert rag.model.api_key == "sk-local" and "sk-local" not in repr(rag.model)
    assert rag.backend.name == "openai"  # llama-cpp-python's server ignores the key


def test_served_model_strings_and_bad_specs():
    served = resolve_model("smollm2@http://127.0.0.1:9/v1")
    assert served.format == "served" and served.name == "smollm2@127.0.0.1:9"
    with pytest.raises(InputError):
        Served("x", base_url="ftp://host/v1")
    with pytest.raises(InputError):
        ragnb.RAG(None, model=Path("/x.gguf"), base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InputError, match="openai"):
        load(Served("x", base_url="http://127.0.0.1:9/v1"), backend="llamacpp")


# ---------------------------------------------------------------- embeddings


def test_openai_embeddings_batched_normalised_and_cached(served_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGNB_HOME", str(tmp_path / "home"))
    texts = ["batteries last six months", "the display dims", "reset the console", "soil probe"]
    # llama-cpp-python's server returns per-token vectors of a generation model, and garbles
    # every input after the first of a request: one text per request here
    embedder = ragnb.embedders.OpenAI(base_url=served_url, model="smollm2", batch_size=1)
    vectors = embedder.embed(texts)

    assert vectors.shape == (4, 576) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, embedder.embed(texts[::-1])[::-1], atol=1e-5)

    kb = ragnb.KnowledgeBase(embedder=embedder)
    kb.add(DOCS, text="text", id="doc_id")
    hits = kb.search("How long do batteries last?", k=2, mode="dense")
    assert hits.height == 2
    cached = list((tmp_path / "home").rglob("*.keys.npy"))
    assert cached and any("openai" in str(p) for p in cached)


# ---------------------------------------------------------------- failures, each one line


def test_server_down_is_one_line():
    port = _free_port()  # nothing listens there
    with pytest.raises(ModelError) as error:
        load(Served("x", base_url=f"http://127.0.0.1:{port}/v1"))
    assert "connection refused" in one_line(error.value)


def test_server_killed_mid_stream_is_one_line(tmp_path, kb):
    server, base = start_server(tmp_path / "log")
    try:
        stream = ragnb.RAG(kb, model="smollm2", base_url=base).ask(
            QUESTION, k=1, mode="bm25", stream=True, max_tokens=200, stop=["\u2603"]
        )
        with pytest.raises(ModelError) as error:
            for i, _ in enumerate(stream):
                if i == 2:
                    os.kill(server.pid, signal.SIGKILL)
        assert "mid-answer" in one_line(error.value)
        assert stream.answer.timings["finish_reason"] == "cancelled"
    finally:
        stop_server(server)


def test_ctrl_c_stops_a_served_answer_and_the_server_answers_the_next_one(served_url, kb):
    rag = ragnb.RAG(kb, model="smollm2", base_url=served_url)
    stream = rag.ask(QUESTION, k=1, mode="bm25", stream=True, max_tokens=200)
    pieces = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in stream:
            pieces.append(chunk.text)
            if len(pieces) == 1:  # a real SIGINT, as the kernel sends it, while a read waits
                threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
    assert stream.answer.timings["finish_reason"] == "cancelled"
    assert stream.answer.raw_text == "".join(pieces).strip()  # the model's text, as far as it got
    assert rag.ask(QUESTION, k=1, mode="bm25", max_tokens=8).timings["generation_tokens"] > 0


class Scripted(http.server.BaseHTTPRequestHandler):
    """A real HTTP server that answers as its class attributes say."""

    status = 500
    delay = 0.0
    fail_first = 0  # answer `status` this many times, then succeed
    sse: bytes | dict = b""  # the raw body of a streamed chat answer, or a JSON answer
    calls: list[str] = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"object": "list", "data": [{"id": "scripted"}]})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        type(self).calls.append((self.path, len(request.get("input") or ())))
        time.sleep(self.delay)
        failing = not self.fail_first or len(type(self).calls) <= self.fail_first
        if self.path.endswith("/tokenize"):
            self._send(404, {"error": "not here"})
        elif isinstance(self.sse, dict) and self.path.endswith("/chat/completions"):
            self._send(200, self.sse)
        elif self.sse and self.path.endswith("/chat/completions"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(self.sse)  # then close: no Content-Length, no chunking
        elif self.status != 200 and failing:
            self._send(
                self.status, {"error": {"message": "scripted failure"}}, {"Retry-After": "0"}
            )
        else:  # embeddings [1, i] for input i, listed last first (clients sort by index)
            inputs = request.get("input") or []
            vectors = [{"index": i, "embedding": [1.0, float(i)]} for i in range(len(inputs))]
            self._send(200, {"data": vectors[::-1]})


@pytest.fixture
def scripted():
    """Start a Scripted server class; yields a function that takes its settings."""
    servers = []

    def start(**settings):
        handler = type("Handler", (Scripted,), {**settings, "calls": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads, server.block_on_close = True, False  # a sleeping handler is left
        server.handle_error = lambda *args: None  # writing to a client that gave up is expected
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_server_sent_events_in_other_dialects_parse_alike(scripted):
    def event(**fields) -> bytes:
        return b"data:" + json.dumps(fields).encode() + b"\r\n\r\n"

    def delta(text: str, finish=None) -> dict:
        return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}

    body = (
        b": keepalive\r\n\r\n"  # mlx_lm.server, during prefill
        + b"event: message\r\nid: 1\r\n"
        + event(**delta("Six"))
        + b": keepalive\n\n"
        + event(**delta(" months"))
        + event(**delta(".", "stop"))
        + event(choices=[], usage={"prompt_tokens": 40, "completion_tokens": 3})
        + b"data: [DONE]\n\n"
    )
    base, _ = scripted(status=200, sse=body)
    backend = load(Served("scripted", base_url=base))
    chunks = list(backend.stream("How long?", SamplingParams(max_tokens=16)))
    assert "".join(c.text for c in chunks) == "Six months."
    last = chunks[-1]
    assert (last.finish_reason, last.generation_tokens, last.prompt_tokens) == ("stop", 3, 40)

    whole = {  # a server that answers a streamed request with one JSON answer
        "choices": [{"message": {"content": "Six months."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 3},
    }
    json_base, _ = scripted(status=200, sse=whole)
    chunks = list(load(Served("scripted", base_url=json_base)).stream("How long?"))
    assert "".join(c.text for c in chunks) == "Six months." and chunks[-1].generation_tokens == 3

    cut, _ = scripted(status=200, sse=event(**delta("Six")))  # ends without [DONE]
    with pytest.raises(ModelError, match="mid-answer"):
        list(load(Served("scripted", base_url=cut)).stream("How long?"))


def test_a_500_answer_is_one_line_with_the_servers_message(scripted, kb):
    base, _ = scripted(status=500)
    rag = ragnb.RAG(kb, model="scripted", base_url=base)
    with pytest.raises(ModelError) as error:
        rag.ask(QUESTION, mode="bm25", max_tokens=8)
    text = one_line(error.value)
    assert "500" in text and "scripted failure" in text


def test_429_is_retried_then_succeeds(scripted):
    base, handler = scripted(status=429, fail_first=2)
    vectors = ragnb.embedders.OpenAI(base_url=base, model="scripted").embed(["a", "b"])
    assert vectors.shape == (2, 2)
    assert handler.calls == [("/v1/embeddings", 2)] * 3


def test_embeddings_are_sent_in_batches_and_kept_in_order(scripted):
    base, handler = scripted(status=200)
    vectors = ragnb.embedders.OpenAI(base_url=base, model="scripted", batch_size=3).embed(
        ["a", "b", "c", "d"]
    )
    assert handler.calls == [("/v1/embeddings", 3), ("/v1/embeddings", 1)]
    expected = np.array([[1, 0], [1, 1], [1, 2], [1, 0]], dtype=np.float32)  # i within a batch
    assert np.allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True))


def test_a_silent_server_times_out_in_one_line(scripted, kb):
    base, _ = scripted(status=200, delay=3.0)
    rag = ragnb.RAG(kb, model=Served("scripted", base_url=base, timeout=0.5))
    with pytest.raises(ModelError) as error:
        rag.ask(QUESTION, mode="bm25", max_tokens=8)
    assert "0.5 s" in one_line(error.value)


# ---------------------------------------------------------------- notebooks, scorecard


def test_rag_cell_with_base_url_and_a_served_compare_arm_on_a_real_kernel(served_url, tmp_path):
    from test_notebook_kernel import run

    served = f"smollm2@{served_url}"
    setup = "\n".join(
        [
            "%load_ext ragnb",
            "import polars as pl",
            f"docs = pl.DataFrame({DOCS.to_dict(as_series=False)!r})",
            "%rag add docs --text text --id doc_id",
        ]
    )
    notebook, _ = run(
        [
            setup,
            f"%%rag --model smollm2 --base-url {served_url} --k 1 --mode bm25 --max-tokens 40\n"
            + QUESTION,
            "_.backend, _.model",
            f"%rag config base_url=http://127.0.0.1:{_free_port()}/v1",  # nothing listens
            f"%%rag --model smollm2 --k 1 --mode bm25 --max-tokens 8\n{QUESTION}",
            "%rag config base_url=",
            f"%%rag --compare --models default,{served} --k 1 --mode bm25 --max-tokens 24 --out cmp"
            f"\n{QUESTION}",
            "sorted(set(zip(cmp.df['arm'], cmp.df['model'])))",
        ],
        tmp_path,
    )
    cells = notebook.cells
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    failed = "".join(o.get("text", "") for o in cells[4].outputs if o.output_type == "stream")
    assert failed.strip().startswith("UsageError: no model server answers at")  # one line
    assert "connection refused" in failed and len(failed.strip().splitlines()) == 1

    answer = "".join(o.get("data", {}).get("text/plain", "") for o in cells[1].outputs)
    assert "six months" in answer
    name = f"smollm2@{served_url[7:-3]}"
    assert cells[2].outputs[0]["data"]["text/plain"] == repr(("openai", name))
    arms = cells[7].outputs[0]["data"]["text/plain"]
    for arm in ("base", "base+rag", name, f"{name}+rag"):
        assert repr(arm) in arms
    assert repr("smollm2-135m") in arms


def test_a_served_model_cannot_be_fine_tuned_by_the_scorecard(served_url, kb):
    with pytest.raises(InputError, match="served and cannot be fine-tuned"):
        ragnb.scorecard(kb, [("How long?", "Six months.")], model=f"smollm2@{served_url}")


def test_tokens_are_counted_by_a_hub_tokenizer_or_an_estimate_that_errs_high(
    scripted, tmp_path, monkeypatch
):
    pytest.importorskip("mlx_lm", reason='pip install "ragnb[mlx]"')
    from test_hub import cache_repo

    from ragnb.generate.convert import mlx_folder
    from ragnb.generate.openai import OpenAIBackend

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    tokenizer = mlx_folder(resolve_model("default").path)  # SmolLM2's tokenizer files
    cache_repo(
        tmp_path / "hf" / "hub", "test-org/smol-tok", {p.name: p for p in tokenizer.iterdir()}
    )
    base, _ = scripted(status=200)  # lists a model, has no tokenize endpoint
    text = "The Skymere console runs on three AA batteries that last about six months."
    exact = load("default", backend="llamacpp").count_tokens(text)

    named = OpenAIBackend(Served("scripted", base_url=base, tokenizer="test-org/smol-tok"))
    assert named.count_tokens(text) == exact and named._counter == "tokenizer"
    guessed = OpenAIBackend(Served("scripted", base_url=base))
    assert exact < guessed.count_tokens(text) < 3 * exact and guessed._counter == "estimate"
