"""The OpenAI-compatible backend: a model behind any server that speaks the OpenAI API
(llama.cpp's llama-server, llama-cpp-python's server, Ollama, LM Studio, vLLM, mlx_lm.server).

    served = Served("qwen2.5:7b", base_url="http://127.0.0.1:11434/v1")
    backend = ragnb.generate.load(served)             # or RAG(kb, model=..., base_url=...)
    for chunk in backend.stream(prompt, SamplingParams(max_tokens=64)): ...

Answers stream through server-sent events into the same :class:`GenerationChunk`s as the
local backends. Servers seldom send token counts in a stream, so the backend counts them:
with the server's tokenize endpoint where it has one (llama-cpp-python ``/extras/tokenize``,
llama-server and vLLM ``/tokenize``), a tokenizer named by hub id, or an estimate that
over-counts. Only the standard library is used.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ragnb._http import Client, check_base_url
from ragnb.errors import INSTALL, InputError, ModelError
from ragnb.generate._text import PLAIN_STOP, render_chat
from ragnb.generate.base import (
    DEFAULT_PARAMS,
    Backend,
    GenerationChunk,
    SamplingParams,
    StreamState,
    check_fits,
)

ENDPOINTS = ("chat", "completions")
# Used when neither the server nor the caller says how large the window is: llama-cpp-python's
# server and older Ollama default to 2048 tokens.
DEFAULT_CONTEXT = 2048
# Tokens a server's chat template may add around each message beyond ragnb's ChatML rendering.
TEMPLATE_MARGIN = 8
MAX_SERVER_STOPS = 4  # the OpenAI API takes at most four stop strings


@dataclass(frozen=True)
class Served:
    """A model behind an OpenAI-compatible server: what ``model=`` takes to use one.

    Args:
        model: the server's name for the model; "default" takes the first one it lists.
        base_url: the API's address, e.g. "http://127.0.0.1:8080/v1"; default
            ``$RAGNB_BASE_URL``.
        api_key: sent as a bearer token; default ``$OPENAI_API_KEY`` (local servers need none).
        endpoint: "chat" (``/chat/completions``, the server applies the model's chat template)
            or "completions" (``/completions`` with ragnb's plain prompt layout).
        context_length: the served context window in tokens, when the server does not say.
        tokenizer: a Hugging Face hub id or folder of the model's tokenizer, to count tokens
            offline when the server has no tokenize endpoint.
        timeout: seconds to wait for the server, and for each piece of a streamed answer.
        retries: extra attempts after a 429 or 503 answer.
        stream: False asks for the whole answer at once (for servers that cannot stream).
    """

    model: str = "default"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    endpoint: str = "chat"
    context_length: int | None = None
    tokenizer: str | None = None
    timeout: float = 60.0
    retries: int = 3
    stream: bool = True

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError(f"model must be the server's model name, got {self.model!r}")
        base_url = self.base_url or os.environ.get("RAGNB_BASE_URL")
        if not base_url:
            raise InputError(
                "no base_url for the served model: pass base_url='http://host:port/v1' "
                "or set RAGNB_BASE_URL"
            )
        object.__setattr__(self, "base_url", check_base_url(base_url))
        if self.api_key is None and os.environ.get("OPENAI_API_KEY"):
            object.__setattr__(self, "api_key", os.environ["OPENAI_API_KEY"])
        if self.endpoint not in ENDPOINTS:
            raise InputError(f"endpoint must be 'chat' or 'completions', got {self.endpoint!r}")
        if self.context_length is not None and (
            not isinstance(self.context_length, int) or self.context_length < 16
        ):
            raise InputError(
                f"context_length must be an integer >= 16, got {self.context_length!r}"
            )
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InputError(f"retries must be an integer >= 0, got {self.retries!r}")

    @property
    def name(self) -> str:
        """How the model is shown in answers and comparisons: "NAME@host:port"."""
        return f"{self.model}@{urlsplit(self.base_url).netloc.rpartition('@')[2]}"

    @property
    def key(self) -> tuple:
        """What identifies this model for memoisation (every field but the api key)."""
        return (
            self.model,
            self.base_url,
            self.endpoint,
            self.context_length,
            self.tokenizer,
            self.timeout,
            self.retries,
            self.stream,
        )


def parse_served(text: str) -> Served | None:
    """A served model from the string form "NAME@http://host:port/v1", else None.

    >>> parse_served("smollm2@http://127.0.0.1:8080/v1").name
    'smollm2@127.0.0.1:8080'
    >>> parse_served("smollm2-135m") is None
    True
    """
    name, sep, url = text.partition("@")
    if not sep or not url.startswith(("http://", "https://")):
        return None
    return Served(name or "default", base_url=url)


def with_base_url(model: Any, base_url: str | None = None, api_key: str | None = None) -> Any:
    """`model` as a :class:`Served` model when `base_url` is given or ``$RAGNB_BASE_URL`` is
    set (then every model name is the server's), else unchanged: what ``RAG(model=,
    base_url=)`` does, so that compare and the scorecard label an arm as RAG will run it."""
    if base_url is None and isinstance(model, str):
        base_url = os.environ.get("RAGNB_BASE_URL") or None
    if base_url is None or isinstance(model, Served):
        return model
    if not isinstance(model, str):
        raise InputError(
            f"base_url={base_url!r} needs the server's model name as model=, not "
            f"{type(model).__name__}"
        )
    return Served(model, base_url=base_url, api_key=api_key)


class OpenAIBackend(Backend):
    """A model answering through an OpenAI-compatible server.

    Creating one asks the server for its models (``GET /models``), which fails with a
    one-line ModelError when the server is down.
    """

    name = "openai"

    def __init__(self, served: Served):
        self.served = served
        self._client = Client(
            served.base_url, served.api_key, timeout=served.timeout, retries=served.retries
        )
        listing = self._client.get_json("/models")
        entries = listing.get("data", []) if isinstance(listing, dict) else []
        ids = [e.get("id") for e in entries if isinstance(e, dict) and e.get("id")]
        if served.model == "default":
            if not ids:
                raise ModelError(
                    f"the model server at {served.base_url} lists no models: "
                    f"pass the model name with model="
                )
            self._model_id = ids[0]
        else:
            self._model_id = served.model
        entry = next((e for e in entries if e.get("id") == self._model_id), {})
        self._llama_cpp = False  # set when the server shows llama.cpp's own endpoints
        self._context = served.context_length or self._server_context(entry) or DEFAULT_CONTEXT
        self.model_name = served.name
        self.default_stop = () if served.endpoint == "chat" else PLAIN_STOP
        self._counter: str | None = None  # how tokens are counted, decided on first use
        self._tokenizer: Any = None
        self._counts: OrderedDict[str, int] = OrderedDict()
        # prompt text -> the chat messages it was rendered from (format_chat -> stream)
        self._messages: OrderedDict[str, list[dict[str, str]]] = OrderedDict()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self._model_id!r}, base_url={self.served.base_url!r})"

    def _server_context(self, entry: dict) -> int | None:
        """The window the server reports: vLLM's max_model_len, LM Studio's
        max_context_length, or llama-server's /props n_ctx."""
        for key in ("max_model_len", "max_context_length", "context_length"):
            if isinstance(entry.get(key), int):
                return entry[key]
        try:
            props = self._client.get_json("/props", root=True)
        except ModelError:
            return None
        self._llama_cpp = isinstance(props, dict)
        settings = props.get("default_generation_settings", {}) if isinstance(props, dict) else {}
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    # -- the Backend contract ----------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._context

    def format_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt as text. For the chat endpoint it is a ChatML rendering, kept only for
        display and counting: the messages themselves are sent, and the server applies the
        model's own template."""
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.served.endpoint == "completions":
            return render_chat(None, messages)
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        text += "<|im_start|>assistant\n"
        _remember(self._messages, text, messages, 64)
        return text

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes on the server (plus a template margin for a rendered chat)."""
        margin = TEMPLATE_MARGIN * len(self._messages.get(text, ())) if text else 0
        if text in self._counts:
            return self._counts[text] + margin
        count = self._count(text)
        _remember(self._counts, text, count, 256)
        return count + margin

    def stream(
        self, prompt: str, params: SamplingParams = DEFAULT_PARAMS
    ) -> Iterator[GenerationChunk]:
        """Yield chunks of the server's answer to `prompt`.

        Raises ContextOverflowError (before sending) when the prompt plus ``max_tokens`` does
        not fit the window, ModelError when the server fails.
        """
        prompt_tokens = self.count_tokens(prompt)
        check_fits(prompt_tokens, params.max_tokens, self._context)
        return self._generate(prompt, prompt_tokens, params)

    # -- internals -------------------------------------------------------------------------

    def _body(self, prompt: str, params: SamplingParams, seed: int) -> tuple[str, dict]:
        body: dict[str, Any] = {
            "model": self._model_id,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": seed,
            "stream": self.served.stream,
        }
        if self._llama_cpp or self._counter == "/extras/tokenize":
            # llama.cpp's servers penalise repeats by default (1.1), which ragnb's sampling
            # (and its local backends) never do: greedy is greedy, and "[1]" can be cited
            body["repeat_penalty"] = 1.0
        stops = [*params.stop, *self.default_stop][:MAX_SERVER_STOPS]
        if stops:
            body["stop"] = stops
        if self.served.stream:
            body["stream_options"] = {"include_usage": True}
        if self.served.endpoint == "completions":
            return "/completions", {**body, "prompt": prompt}
        messages = self._messages.get(prompt) or [{"role": "user", "content": prompt}]
        return "/chat/completions", {**body, "messages": messages}

    def _generate(
        self, prompt: str, prompt_tokens: int, params: SamplingParams
    ) -> Iterator[GenerationChunk]:
        run = StreamState(self, prompt_tokens, params)
        path, body = self._body(prompt, params, run.seed)
        if self.served.stream:
            events = self._client.post_events(path, body)
        else:
            events = iter([self._client.post_json(path, body)])
        scanner = run.scanner
        finish, usage, pieces = None, None, []
        try:
            for event in events:
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                for choice in (event.get("choices") or [])[:1]:
                    piece = _choice_text(choice)
                    if piece:
                        run.tick()
                        run.generated += 1
                        pieces.append(piece)
                        out = scanner.push(piece)
                        if out and not scanner.stopped:
                            yield run.chunk(out)
                    finish = choice.get("finish_reason") or finish
                if scanner.stopped:
                    break
        finally:
            if hasattr(events, "close"):
                events.close()
        out = scanner.flush()
        if scanner.stopped:
            finish = "stop"
        if usage and isinstance(usage.get("completion_tokens"), int):
            run.generated = usage["completion_tokens"]
            run.prompt_tokens = usage.get("prompt_tokens") or run.prompt_tokens
        elif pieces and not scanner.stopped:
            run.generated = self._count("".join(pieces))  # exact where the server tokenizes
        yield run.chunk(out, "length" if finish == "length" else "stop")

    def _count(self, text: str) -> int:
        if not text:
            return 0
        if self._counter is None:
            self._counter = self._pick_counter(text)
        if self._counter == "estimate":
            return estimate_tokens(text)
        if self._counter == "tokenizer":
            return len(self._tokenizer.encode(text, add_special_tokens=False))
        return self._server_count(text, self._counter)

    def _pick_counter(self, sample: str) -> str:
        """The first way of counting that works: a named tokenizer, the server's tokenize
        endpoint (llama-cpp-python, then llama-server / vLLM), else an estimate."""
        if self.served.tokenizer:
            self._tokenizer = _load_tokenizer(self.served.tokenizer)
            return "tokenizer"
        for way in ("/extras/tokenize", "/tokenize"):
            try:
                self._server_count(sample, way)
                return way
            except ModelError:
                continue
        return "estimate"

    def _server_count(self, text: str, way: str) -> int:
        if way == "/extras/tokenize":
            answer = self._client.post_json(way, {"input": text}, root=True)
        else:
            body = {"content": text, "prompt": text, "model": self._model_id}
            answer = self._client.post_json(way, body, root=True)
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list):
            raise ModelError(f"{way} answered without tokens")
        return len(tokens)


def _choice_text(choice: dict) -> str:
    """The new text of a choice: chat ``delta.content`` / ``message.content``, or ``text``."""
    for key in ("delta", "message"):
        part = choice.get(key)
        if isinstance(part, dict):
            return part.get("content") or ""
    return choice.get("text") or ""


def estimate_tokens(text: str) -> int:
    """A token count that errs high: a UTF-8 byte per 3 tokens' worth plus 10%.

    English averages ~4.5 bytes per token in the usual vocabularies, so this over-counts, and
    a prompt fitted with it fits.

    >>> estimate_tokens("How long do the batteries last?")
    13
    """
    return math.ceil(len(text.encode("utf-8")) / 3 * 1.1) + 1


def _load_tokenizer(name: str):
    """A transformers tokenizer from a hub id in the local cache, or a folder (offline)."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        from ragnb.errors import MissingDependencyError

        raise MissingDependencyError("transformers", INSTALL["transformers"]) from exc
    try:
        from ragnb.generate.hub import hub_cache

        # the cache folder from the environment now (huggingface_hub fixed it at import)
        return AutoTokenizer.from_pretrained(name, cache_dir=hub_cache(), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"tokenizer {name!r} is not in the Hugging Face cache: run `hf download {name}` "
            f"or drop tokenizer= (tokens are then counted by the server or estimated)"
        ) from exc


def _remember(cache: OrderedDict, key: str, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
