"""The RAG pipeline: retrieve, fit a numbered prompt, generate, cite.

    rag = ragnb.RAG(kb, model="default")             # the model loads on the first ask
    answer = rag.ask("How long do the batteries last?", k=4, mode="hybrid")
    answer.text, answer.citations, answer.hits, answer.timings

    stream = rag.ask("...", stream=True)             # an AnswerStream
    stream.hits                                      # known before generation starts
    for chunk in stream: print(chunk.text, end="")   # GenerationChunk, as the backend yields them
    stream.answer                                    # the finished Answer

    rag.ask("...", use_retrieval=False)              # the closed-book answer, for comparison
    rag.ask("...", answer_mode="extractive")         # the best evidence sentence, no model

Grounding (``ragnb.grounding``): the prompt holds compact evidence (``context="evidence"``: the
sentences of the retrieved chunks that best match the question, with their neighbours) or the
whole chunks (``context="passages"``); once generation ends, every answer sentence is checked
against the passages (``answer.support``, ``answer.citations["supported"]``), and with
``abstain="auto"`` an answer the passages do not support becomes the documents' best sentence,
quoted with its citation, when the evidence is strong (``answer.fallback == "evidence"``;
``on_unsupported="abstain"`` turns it off), else "The documents do not say"
(``answer.abstained``); the model's words stay in ``answer.raw_text``.

Breaking out of the loop, ``stream.close()`` or a KeyboardInterrupt stops generation at once;
the backend is left ready for the next question, and ``stream.answer`` holds the partial text
with ``finish_reason == "cancelled"``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ragnb.answer import Answer, Timings, parse_citations, resolve_citations
from ragnb.errors import EmptyIndexError, InputError, check_unicode
from ragnb.generate.base import Backend, GenerationChunk, SamplingParams
from ragnb.generate.openai import with_base_url
from ragnb.grounding import (
    ABSTENTION,
    EvidencePool,
    GroundingSettings,
    attribute,
    catalogue_of,
    empty_support,
    evidence_passages,
    extract,
    score_evidence,
    settle,
    weak_evidence,
)
from ragnb.kb import empty_hits
from ragnb.prompt import FittedPrompt, Passage, fit_prompt
from ragnb.records import search_record
from ragnb.retrieve.expand import check_expand, expanded_search
from ragnb.retrieve.expand import expand as write_expansion
from ragnb.retrieve.settings import SearchSettings

SAMPLING_FIELDS = tuple(f.name for f in dataclasses.fields(SamplingParams))
DEFAULT_SAMPLING = {"temperature": 0.0, "max_tokens": 256}
CONTEXTS = ("evidence", "passages")
ABSTAIN = ("auto", "never")
ANSWER_MODES = ("generate", "extractive")
ON_UNSUPPORTED = ("evidence", "abstain")


@dataclass
class _Job:
    """Everything one question needs before generation starts."""

    question: str
    backend: Backend
    params: SamplingParams
    fitted: FittedPrompt
    hits: pl.DataFrame
    mode: str | None
    closed_book: bool
    started: float
    retrieval_ms: float
    pool: EvidencePool | None = None  # the scored sentences of the hits (None: closed-book)
    shown: tuple[int, ...] = ()  # the passage numbers the prompt holds
    abstain: str = "auto"
    on_unsupported: str = "evidence"
    extractive: bool = False
    evidence_ms: float = 0.0
    empty_reason: str | None = None  # no passage survived retrieval: abstain, skip the model
    search: dict = field(default_factory=dict)  # ragnb.records.search_record of the settings
    expansion: Any = None  # ragnb.retrieve.expand.Expansion
    asked_as: str | None = None  # a follow-up's own words (ragnb.Chat)


class RAG:
    """Answer questions from a knowledge base with a local model, citing the chunks used.

    Args:
        kb: a :class:`ragnb.KnowledgeBase`, or None for closed-book questions only.
        model: what ``ragnb.generate.load`` accepts: "default", "smollm2-135m", "gemma3-270m",
            a GGUF path, a fine-tuned model, a hub id ("org/repo:Q4_K_M"); with `base_url`, the
            server's name for a model. Loaded (once per process) on the first ask.
        backend: "auto", "llamacpp", "mlx", or an already loaded :class:`Backend`.
        base_url: an OpenAI-compatible server ("http://127.0.0.1:8080/v1") that serves
            `model`; default ``$RAGNB_BASE_URL`` (then every string model is served).
        api_key: the server's key; default ``$OPENAI_API_KEY``.
        **sampling_defaults: defaults for every ask: temperature (0, greedy), max_tokens (256),
            top_p, seed, stop.

    Raises:
        InputError: an unknown sampling option or a bad value.
    """

    def __init__(
        self,
        kb=None,
        model: Any = "default",
        backend: str | Backend = "auto",
        base_url: str | None = None,
        api_key: str | None = None,
        **sampling_defaults,
    ):
        self.kb = kb
        self.model = (
            with_base_url(model, base_url, api_key) if not isinstance(backend, Backend) else model
        )
        self._backend = backend if isinstance(backend, Backend) else None
        self.backend_name = backend.name if isinstance(backend, Backend) else backend
        self.sampling = self._params({**DEFAULT_SAMPLING, **sampling_defaults})
        self._active: AnswerStream | None = None

    def __repr__(self) -> str:
        chunks = "no kb" if self.kb is None else f"{len(self.kb)} chunks"
        return f"RAG({chunks}, model={self.model_name!r}, backend={self.backend_name!r})"

    @property
    def backend(self) -> Backend:
        """The generation backend, loaded on first use (memoised by ``ragnb.generate.load``)."""
        if self._backend is None:
            from ragnb.generate import load

            self._backend = load(self.model, backend=self.backend_name)
            self.backend_name = self._backend.name
        return self._backend

    @property
    def model_name(self) -> str:
        """The model's short name (its registry name once loaded)."""
        if self._backend is not None and self._backend.model_name:
            return self._backend.model_name
        return str(getattr(self.model, "name", self.model))

    def ask(
        self,
        question: str,
        k: int = 4,
        mode: str | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
        where: Any = None,
        use_retrieval: bool = True,
        stream: bool = False,
        context: str = "evidence",
        abstain: str = "auto",
        answer_mode: str = "generate",
        on_unsupported: str = "evidence",
        demonstration: str | None = None,
        grounding: GroundingSettings | None = None,
        min_score: float | None = None,
        rerank: Any = None,
        expand: str | None = None,
        n_queries: int = 3,
        follow_up: str | None = None,
        **sampling: Any,
    ) -> Answer | AnswerStream:
        """Answer `question` from the `k` best chunks (or closed-book).

        Args:
            question: the question.
            k: how many chunks to retrieve; fewer reach the prompt if they do not fit.
            mode, fusion, alpha, where: passed to ``kb.search`` (checked by
                :class:`SearchSettings`); mode None is hybrid when the knowledge base has an
                embedder, else bm25.
            use_retrieval: False for the closed-book answer (no kb needed).
            stream: True returns an :class:`AnswerStream` instead of an :class:`Answer`.
            context: "evidence" (the best sentences of the chunks, with neighbours, under their
                passage numbers) or "passages" (the chunks whole). Either way the model, the
                evidence scores and the checks read the question with the full name of a
                product it calls "the Studio" or "the smaller grinder", as the documents name
                it (``ragnb.grounding.resolve``; ``answer.prompt`` shows it); ``answer.question``
                keeps the words typed.
            abstain: "auto" replaces an answer the passages do not support (or a question they
                hardly touch) by "The documents do not say"; "never" keeps every answer (its
                sentences are still checked and flagged in ``answer.support``).
            answer_mode: "generate" (the model answers) or "extractive" (the best evidence
                sentence and its citation, no model at all).
            on_unsupported: with ``abstain="auto"``, what replaces a generated answer the
                passages do not support while the evidence itself is strong: "evidence" (the
                documents' best sentence with its citation, ``answer.fallback == "evidence"``,
                shown as quoted from the documents; measured better on Skymere) or "abstain"
                ("The documents do not say"). Weak or off-topic evidence always abstains.
            demonstration: the worked exchange in the prompt: None (none: measured best on
                Skymere), "fixed" (a made-up kettle, never your text) or "first_sentence" (the
                old one, quoting passage 1; kept for comparison).
            grounding: weights and thresholds (:class:`ragnb.grounding.GroundingSettings`).
            min_score, rerank: passed to ``kb.search``: drop weak hits (on the mode's scale,
                see SearchSettings), re-score the fused candidates. When no hit survives and
                ``abstain="auto"``, the answer is "The documents do not say" without asking
                the model.
            expand: "multi-query" (the model writes `n_queries` rewordings; the lists are
                fused by reciprocal rank) or "hyde" (the model writes a hypothetical answer,
                searched with the question); kept in ``answer.expansion``
                (see ragnb.retrieve.expand).
            follow_up: the user's own words when `question` is the standalone rewrite of a
                follow-up (ragnb.Chat): ``answer.question`` keeps them and
                ``answer.standalone_question`` the rewrite that retrieval and the model used.
            **sampling: temperature, max_tokens, top_p, seed, stop for this call.

        Returns:
            An :class:`Answer`, or an :class:`AnswerStream` when ``stream=True``.

        Raises:
            InputError: empty question, bad k or mode, no knowledge base, bad sampling option.
            EmptyIndexError: the knowledge base holds no chunks.
            ContextOverflowError: the question alone does not fit the model's context window.
            ModelError: the model is missing or cannot be loaded.
        """
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"question must be a non-empty string, got {question!r}")
        check_unicode(question, "question")
        question = question.strip()
        _check_choice("context", context, CONTEXTS)
        _check_choice("abstain", abstain, ABSTAIN)
        _check_choice("answer_mode", answer_mode, ANSWER_MODES)
        _check_choice("on_unsupported", on_unsupported, ON_UNSUPPORTED)
        if grounding is not None and not isinstance(grounding, GroundingSettings):
            raise InputError(
                f"grounding must be a ragnb.grounding.GroundingSettings, got {grounding!r}"
            )
        extractive = answer_mode == "extractive"
        if extractive and not use_retrieval:
            raise InputError("answer_mode='extractive' needs retrieval: drop use_retrieval=False")
        # None means "the RAG's default", except for seed, where None means random.
        overrides = {key: v for key, v in sampling.items() if v is not None or key == "seed"}
        params = self._params({**dataclasses.asdict(self.sampling), **overrides})
        search = expansion = empty_reason = None
        if use_retrieval:
            search = SearchSettings(
                k=k,
                mode=mode,
                fusion=fusion,
                alpha=alpha,
                where=where,
                min_score=min_score,
                rerank=rerank,
            )
            check_expand(expand, n_queries)
            self._check_retrieval()
            search = search.resolve(self.kb)
        started = time.perf_counter()
        hits, retrieval_ms = empty_hits(), 0.0
        if search is not None:
            if expand is not None:
                expansion = write_expansion(question, self.backend, expand, n_queries, params.seed)
                hits = expanded_search(self.kb, expansion, search)
            else:
                hits = self.kb.search(question, settings=search)
            retrieval_ms = (time.perf_counter() - started) * 1000
            if hits.height == 0 and search.min_score is not None and abstain == "auto":
                empty_reason = f"no passage scored above min_score={search.min_score:g}"
        pool, passages, evidence_ms = None, None, 0.0
        if use_retrieval:
            begun = time.perf_counter()
            pool = score_evidence(
                question, hits, self.kb.embedder, grounding, self.kb.mentions, catalogue_of(self.kb)
            )
            passages = [
                Passage(t or "", h or "", x, number=i)
                for i, (t, h, x) in enumerate(
                    hits.select("title", "heading", "text").iter_rows(), start=1
                )
            ]
            if context == "evidence":
                # No sentence scores at all (nothing in common with the question): whole chunks.
                passages = evidence_passages(pool, hits) or passages
            evidence_ms = (time.perf_counter() - begun) * 1000
        if self._active is not None and self._active.started:
            self._active.close()  # an abandoned stream holds the backend: end it first
        if extractive or empty_reason:
            backend, fitted = None, FittedPrompt("", [], (), 0, 0)
        else:
            backend = self.backend
            fitted = fit_prompt(
                pool.question if pool is not None else question,  # "the Studio" in full
                passages,
                format_chat=backend.format_chat,
                count_tokens=backend.count_tokens,
                context_length=backend.context_length,
                max_tokens=params.max_tokens,
                demonstration=demonstration,
            )
        job = _Job(
            question=question,
            backend=backend,
            params=params,
            fitted=fitted,
            hits=hits,
            mode=search.mode if search is not None else None,
            closed_book=not use_retrieval,
            started=started,
            retrieval_ms=retrieval_ms,
            pool=pool,
            shown=tuple(range(1, hits.height + 1))
            if extractive
            else tuple(p.number or i for i, p in enumerate(fitted.passages, start=1)),
            abstain=abstain,
            on_unsupported=on_unsupported,
            extractive=extractive,
            evidence_ms=evidence_ms,
            empty_reason=empty_reason,
            search={} if search is None else search_record(search, expand, n_queries),
            expansion=expansion,
            asked_as=follow_up,
        )
        name = "extractive" if extractive else self.model_name
        self._active = AnswerStream(job, name)
        return self._active if stream else self._active.answer

    def _params(self, values: dict[str, Any]) -> SamplingParams:
        unknown = sorted(set(values) - set(SAMPLING_FIELDS))
        if unknown:
            raise InputError(
                f"unknown sampling option {', '.join(unknown)}: use {', '.join(SAMPLING_FIELDS)}"
            )
        return SamplingParams(**values)

    def _check_retrieval(self) -> None:
        if self.kb is None:
            raise InputError(
                "this RAG has no knowledge base: create it with RAG(kb), "
                "or ask with use_retrieval=False"
            )
        if len(self.kb) == 0:
            raise EmptyIndexError(
                "the knowledge base is empty (0 chunks): add documents with kb.add(path_or_texts) "
                "first, or ask with use_retrieval=False"
            )


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}: use one of {', '.join(map(repr, choices))}")


class AnswerStream:
    """A streamed answer: iterate for GenerationChunks, then read ``.answer``.

    ``hits`` and ``prompt`` are known before generation starts. Iterating a second time
    yields nothing; ``answer`` finishes the generation if it is still running.
    """

    def __init__(self, job: _Job, model_name: str):
        self._job = job
        self._model_name = model_name
        self._source: Iterator[GenerationChunk] | None = None
        self._pieces: list[str] = []
        self._last: GenerationChunk | None = None
        self._gen_started = 0.0
        self._first_at: float | None = None
        self._answer: Answer | None = None

    @property
    def hits(self) -> pl.DataFrame:
        """The retrieved chunks (all k, best first)."""
        return self._job.hits

    @property
    def prompt(self) -> str:
        """The exact prompt the model completes."""
        return self._job.fitted.prompt

    @property
    def retrieval_ms(self) -> float:
        """How long retrieval took, known before generation starts."""
        return self._job.retrieval_ms

    @property
    def prompt_tokens(self) -> int:
        """How many tokens the model reads before its first answer token."""
        return self._job.fitted.prompt_tokens

    @property
    def started(self) -> bool:
        """Whether generation has begun."""
        return self._source is not None

    @property
    def done(self) -> bool:
        """Whether generation has finished (or was stopped)."""
        return self._answer is not None

    def __iter__(self) -> Iterator[GenerationChunk]:
        if self._answer is not None:
            return
        if self._source is None:
            self._gen_started = time.perf_counter()
            if self._job.extractive or self._job.empty_reason:
                self._source = _extracted(self._job)
            else:
                self._source = self._job.backend.stream(self._job.fitted.prompt, self._job.params)
        try:
            for chunk in self._source:
                if self._first_at is None and chunk.generation_tokens:
                    self._first_at = time.perf_counter()
                self._pieces.append(chunk.text)
                self._last = chunk
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Stop generation now (the backend stays usable); ``answer`` keeps the partial text."""
        if self._answer is not None:
            return
        if self._source is not None:
            self._source.close()
        self._answer = self._finish()

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def answer(self) -> Answer:
        """The finished Answer (runs the rest of the generation first, if any)."""
        if self._answer is None:
            for _ in self:
                pass
        return self._answer  # type: ignore[return-value]

    def _finish(self) -> Answer:
        job, last, ended = self._job, self._last, time.perf_counter()
        text = raw = "".join(self._pieces).strip()
        # Passages are numbered by their rank in the hits; evidence may show [3] and not [2],
        # so every number up to the highest shown can be cited (and is checked by support).
        context = job.hits.head(max(job.shown, default=0))
        citations, invalid = resolve_citations(parse_citations(text), context)
        support, abstained, fallback, verify_ms = empty_support(), False, None, 0.0
        if job.pool is not None:
            begun = time.perf_counter()
            if job.extractive:
                support = _extractive_support(job, text)
            else:
                support = attribute(text, job.pool, job.shown)
            citations = _judge_citations(citations, support)
            reason, quoted = None, None
            if job.empty_reason:
                reason = job.empty_reason
            elif job.abstain == "auto" and job.extractive:
                # the quote is the evidence: only weak evidence (or none) makes it give way; a
                # low-scoring quote is shown flagged (see grounding.extract)
                reason = weak_evidence(job.pool) or (None if text else "no sentence to quote")
            elif job.abstain == "auto":
                reason, fallback, quoted = settle(support, job.pool, raw, job.on_unsupported)
            if quoted is not None:
                # The model's words could not be verified but the evidence is strong: show the
                # documents' own sentence with its citation (raw_text keeps the model's words).
                text, support = quoted
                citations, invalid = resolve_citations(parse_citations(text), context)
                citations = _judge_citations(citations, support)
            elif reason is not None:
                text, abstained = f"{ABSTENTION} ({reason}).", True
            verify_ms = (time.perf_counter() - begun) * 1000
            ended = time.perf_counter()
        tokens = last.generation_tokens if last else 0
        tps = last.generation_tps if last else 0.0
        if not tps and self._first_at and tokens > 1 and ended > self._first_at:
            tps = (tokens - 1) / (ended - self._first_at)
        timings = Timings(
            retrieval_ms=job.retrieval_ms,
            evidence_ms=job.evidence_ms,
            verify_ms=verify_ms,
            first_token_ms=(self._first_at - self._gen_started) * 1000 if self._first_at else None,
            total_ms=(ended - job.started) * 1000,
            prompt_tokens=job.fitted.prompt_tokens,
            generation_tokens=tokens,
            tokens_per_s=tps,
            truncated_context=job.fitted.truncated,
            context_chunks=max(job.shown, default=0),
            finish_reason=(last.finish_reason if last else None) or "cancelled",
        )
        return Answer(
            question=job.asked_as or job.question,
            text=text,
            citations=citations,
            invalid_citations=invalid,
            hits=job.hits,
            timings=timings,
            prompt=job.fitted.prompt,
            model=self._model_name,
            backend=job.backend.name if job.backend is not None else "ragnb",
            mode=job.mode,
            closed_book=job.closed_book,
            support=support,
            abstained=abstained,
            fallback=fallback,
            raw_text=raw,
            search=job.search,
            expansion=job.expansion,
            standalone_question=job.question if job.asked_as else None,
        )

    def __repr__(self) -> str:
        state = "done" if self.done else "not finished"
        return f"AnswerStream({self._job.question!r}, {self.hits.height} hits, {state})"


def _judge_citations(citations: pl.DataFrame, support: pl.DataFrame) -> pl.DataFrame:
    """`citations` with ``supported``: the passage backs a sentence that cites it."""
    backing = {
        n
        for number, cited, ok in support.select("number", "cited", "supported").rows()
        for n in cited or ()
        if ok and n == number
    }
    return citations.with_columns(supported=pl.col("number").is_in(list(backing)))


def _extracted(job: _Job) -> Iterator[GenerationChunk]:
    """The extractive answer as a one-chunk stream, so streaming code needs no special case."""
    text, _ = extract(job.pool)
    yield GenerationChunk(text, 0, 0, 0.0, 0.0, finish_reason="stop")


def _extractive_support(job: _Job, text: str) -> pl.DataFrame:
    extracted, support = extract(job.pool)
    return support if extracted == text else attribute(text, job.pool, job.shown)
