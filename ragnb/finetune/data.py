"""Training pairs: question/answer rows built from a KnowledgeBase or taken from the user.

    load_pairs(df_or_jsonl)       -> pl.DataFrame[question, answer (, split)]
    dataset(kb_or_pairs, ...)     -> pl.DataFrame[question, answer, split, origin, chunk_id]
    write_jsonl(df, path)         -> the chat layout mlx-lm reads ({"messages": [...]})
    data_sha256(df)               -> the hash the manifest records

The split column holds "train" or "heldout"; trainers read only the "train" rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ragnb._jsonl import read_jsonl
from ragnb.errors import InputError

SPLITS = ("train", "heldout")
_FAQ = re.compile(
    r"^\s*(?:Q|Question)\s*[:.]\s*(?P<q>.+?)\s*\n\s*(?:A|Answer)\s*[:.]\s*(?P<a>.+?)"
    r"(?=\n\s*(?:Q|Question)\s*[:.]|\Z)",
    re.MULTILINE | re.DOTALL,
)
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+.*$", re.MULTILINE)


def _row_from_record(record: Any, where: str) -> dict[str, str]:
    """One JSONL/dict record in any supported layout -> {"question", "answer"(, "split")}.

    >>> _row_from_record({"prompt": "Q?", "completion": "A."}, "line 1")
    {'question': 'Q?', 'answer': 'A.'}
    """
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or len(messages) < 2:
            raise InputError(f"{where}: 'messages' needs a user turn then an assistant turn")
        last, before = messages[-1], messages[-2]
        if not (last.get("role") == "assistant" and before.get("role") == "user"):
            raise InputError(
                f"{where}: 'messages' must end with a user turn then an assistant turn, "
                f"got roles {[m.get('role') for m in messages]}"
            )
        row = {"question": before.get("content"), "answer": last.get("content")}
    elif "prompt" in record and "completion" in record:
        row = {"question": record["prompt"], "answer": record["completion"]}
    elif "question" in record and "answer" in record:
        row = {"question": record["question"], "answer": record["answer"]}
    else:
        raise InputError(
            f"{where}: unknown layout with keys {sorted(record)}: use "
            '{"messages": [...]}, {"prompt", "completion"} or {"question", "answer"}'
        )
    if "split" in record:
        row["split"] = record["split"]
    return row


def _read_jsonl(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(f"training file {path} does not exist: pass a JSONL file or a DataFrame")
    return [_row_from_record(record, where) for where, record in read_jsonl(path)]


def load_pairs(pairs: Any):
    """Normalise the user's training pairs into a polars DataFrame.

    `pairs` may be a polars or pandas DataFrame with ``question`` and ``answer`` columns
    (``prompt``/``completion`` also accepted), a path to a JSONL file in mlx-lm's chat
    (``{"messages": [...]}``) or prompt/completion layout, or a list of dicts or
    (question, answer) tuples. A ``split`` column ("train"/"heldout") is kept when present.

    >>> load_pairs([("Who?", "Me.")]).rows()
    [('Who?', 'Me.')]
    """
    import polars as pl

    if isinstance(pairs, (str, Path)):
        df = pl.DataFrame(_read_jsonl(Path(pairs)))
    elif isinstance(pairs, pl.DataFrame):
        df = pairs
    elif hasattr(pairs, "to_dict") and hasattr(pairs, "columns"):  # pandas
        df = pl.from_pandas(pairs)
    elif isinstance(pairs, Iterable):
        rows = []
        for i, item in enumerate(pairs):
            if isinstance(item, (tuple, list)) and len(item) == 2:
                rows.append({"question": item[0], "answer": item[1]})
            else:
                rows.append(_row_from_record(item, f"item {i}"))
        df = pl.DataFrame(rows)
    else:
        raise InputError(
            f"training pairs of type {type(pairs).__name__} are not supported: pass a DataFrame "
            "with question/answer columns or a JSONL path"
        )
    if "question" not in df.columns and {"prompt", "completion"} <= set(df.columns):
        df = df.rename({"prompt": "question", "completion": "answer"})
    missing = {"question", "answer"} - set(df.columns)
    if missing:
        raise InputError(
            f"training pairs lack column(s) {sorted(missing)} (have {df.columns}): "
            "rename them to question and answer"
        )
    if df.height == 0:
        raise InputError("training pairs are empty: give at least one question/answer pair")
    keep = ["question", "answer"] + (["split"] if "split" in df.columns else [])
    df = df.select(keep).with_columns(pl.col("question", "answer").cast(pl.String))
    blank = df.with_row_index().filter(
        pl.col("question").is_null()
        | pl.col("answer").is_null()
        | (pl.col("question").str.strip_chars() == "")
        | (pl.col("answer").str.strip_chars() == "")
    )
    if blank.height:
        raise InputError(
            f"training pair(s) at row(s) {blank['index'].to_list()[:5]} have an empty question or "
            "answer: fill or drop them"
        )
    if "split" in df.columns:
        bad = set(df["split"].cast(pl.String).unique().to_list()) - set(SPLITS)
        if bad:
            raise InputError(f"split values {sorted(map(str, bad))} are unknown: use {SPLITS}")
    return df


def first_sentences(text: str, n: int = 2, max_chars: int = 400) -> str:
    """The first `n` sentences of `text` (markdown headings dropped), at most `max_chars` long.

    >>> first_sentences("# Pumps\\nThe pump runs. It hums. It stops.")
    'The pump runs. It hums.'
    """
    from ragnb.grounding.sentences import sentences as split  # the one sentence splitter

    body = " ".join(_MD_HEADING.sub("", text).split())
    sentences = [span.text for span in split(body)]
    out = " ".join(sentences[:n]).strip()
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0] + " ..."
    return out


def faq_pairs(text: str) -> list[tuple[str, str]]:
    """Question/answer pairs written FAQ-style ("Q: ... / A: ...") in `text`.

    >>> faq_pairs("Q: How hot?\\nA: Very hot.\\nQ: Why?\\nA: Physics.")
    [('How hot?', 'Very hot.'), ('Why?', 'Physics.')]
    """
    return [(" ".join(m["q"].split()), " ".join(m["a"].split())) for m in _FAQ.finditer(text)]


def pairs_from_chunk(chunk: dict) -> list[dict[str, str]]:
    """Questions a chunk answers by its shape: FAQ lines, a question heading, or a heading.

    >>> chunk = {"title": "Manual", "heading": "Care > Cleaning", "text": "Wipe it dry."}
    >>> pairs_from_chunk(chunk)[0]["question"]
    'What does Manual say about cleaning (care)?'
    """
    text = chunk.get("text") or ""
    found = faq_pairs(text)
    if found:
        return [{"question": q, "answer": a, "origin": "faq"} for q, a in found]
    answer = first_sentences(text)
    heading = (chunk.get("heading") or "").strip()
    if not heading or not answer:
        return []
    parts = [p.strip() for p in heading.split(">") if p.strip()]
    last = parts[-1]
    if last.endswith("?"):
        return [{"question": last, "answer": answer, "origin": "faq"}]
    topic = last[0].lower() + last[1:] if last[:2].istitle() or last[:1].isupper() else last
    context = f" ({parts[-2].lower()})" if len(parts) > 1 else ""
    title = (chunk.get("title") or "the documentation").strip()
    return [
        {
            "question": f"What does {title} say about {topic}{context}?",
            "answer": answer,
            "origin": "heading",
        }
    ]


def _ask_model_for_question(backend, text: str) -> str | None:
    from ragnb.generate.base import SamplingParams

    prompt = backend.format_chat(
        [
            {
                "role": "user",
                "content": "Write one short question that this passage answers. Reply with the "
                f"question only.\n\nPassage:\n{text[:1200]}",
            }
        ]
    )
    out = backend.generate(prompt, SamplingParams(temperature=0.0, max_tokens=48, stop=("\n",)))
    out = out.strip().strip('"').strip()
    return out if out.endswith("?") and len(out) > 8 else None


def split_rows(questions: list[str], heldout: float, seed: int) -> list[str]:
    """Assign "train"/"heldout" to each question, stable under reordering of the rows.

    Rows are ranked by a seeded hash of their question; the last ``round(heldout * n)`` are
    held out (never all of them: at least one row stays in train).

    >>> split_rows(["a", "b", "c", "d"], 0.25, seed=0).count("heldout")
    1
    """
    if not 0.0 <= heldout < 1.0:
        raise InputError(f"heldout={heldout} is out of range: use a fraction in [0, 1)")
    n = len(questions)
    n_held = min(n - 1, round(heldout * n)) if n > 1 else 0
    keys = [hashlib.sha256(f"{seed}\0{q}".encode()).hexdigest() for q in questions]
    held = set(sorted(range(n), key=lambda i: keys[i])[n - n_held :]) if n_held else set()
    return ["heldout" if i in held else "train" for i in range(n)]


def dataset(
    source: Any,
    *,
    heldout: float = 0.2,
    seed: int = 0,
    generate_questions: bool = False,
    model: Any = "default",
    max_pairs: int | None = None,
):
    """Build a question/answer training set, with a held-out split.

    Args:
        source: a KnowledgeBase (pairs are built from its chunks: FAQ-style "Q:/A:" lines,
            headings that are questions, and other headings as "What does <title> say about
            <heading>?" answered by the chunk's first two sentences), or the user's own pairs
            in any form ``load_pairs`` accepts.
        heldout: fraction of rows kept out of training (split == "heldout"), chosen by a seeded
            hash so the same question always lands in the same split. Ignored when the user's
            pairs already have a split column.
        seed: seed of the split.
        generate_questions: also ask the local `model` to write one question per chunk
            (slow: one generation per chunk).
        model: model used by `generate_questions`.
        max_pairs: keep at most this many rows (first ones).

    Returns:
        polars.DataFrame with columns question, answer, split, origin ("user", "faq",
        "heading", "model") and chunk_id (null for user pairs).
    """
    import polars as pl

    if hasattr(source, "chunks") and isinstance(source.chunks, pl.DataFrame):
        chunks = source.chunks
        if chunks.height == 0:
            raise InputError("the knowledge base holds no chunks: add documents before dataset()")
        backend = None
        if generate_questions:
            from ragnb.generate import load

            backend = load(model)
        rows = []
        seen: set[str] = set()
        for chunk in chunks.iter_rows(named=True):
            if max_pairs is not None and 0 < max_pairs <= len(seen):
                break  # enough distinct questions: spare the rest (one generation per chunk)
            for pair in pairs_from_chunk(chunk):
                rows.append({**pair, "chunk_id": chunk["chunk_id"]})
                seen.add(pair["question"])
            if backend is not None:
                question = _ask_model_for_question(backend, chunk["text"])
                answer = first_sentences(chunk["text"])
                if question and answer:
                    seen.add(question)
                    rows.append(
                        {
                            "question": question,
                            "answer": answer,
                            "origin": "model",
                            "chunk_id": chunk["chunk_id"],
                        }
                    )
        if not rows:
            raise InputError(
                "no question/answer pairs could be built from this knowledge base (no headings or "
                "FAQ lines): pass generate_questions=True or your own pairs"
            )
        df = pl.DataFrame(
            rows,
            schema={
                "question": pl.String,
                "answer": pl.String,
                "origin": pl.String,
                "chunk_id": pl.String,
            },
        )
        df = df.unique(subset="question", keep="first", maintain_order=True)
    else:
        df = load_pairs(source).with_columns(
            origin=pl.lit("user"), chunk_id=pl.lit(None, dtype=pl.String)
        )
    if max_pairs is not None:
        df = df.head(max_pairs)
    if "split" not in df.columns:
        df = df.with_columns(split=pl.Series(split_rows(df["question"].to_list(), heldout, seed)))
    return df.select("question", "answer", "split", "origin", "chunk_id")


def training_rows(df) -> list[tuple[str, str]]:
    """The (question, answer) rows a trainer uses: the "train" split, or all rows if no split."""
    import polars as pl

    if "split" in df.columns:
        df = df.filter(pl.col("split") == "train")
    if df.height == 0:
        raise InputError("no rows in the train split: lower heldout or add pairs")
    return list(zip(df["question"].to_list(), df["answer"].to_list(), strict=True))


def data_sha256(rows: list[tuple[str, str]]) -> str:
    """A hash of the training rows, in order, recorded in the manifest.

    >>> len(data_sha256([("q", "a")]))
    64
    """
    h = hashlib.sha256()
    for question, answer in rows:
        h.update(question.encode())
        h.update(b"\0")
        h.update(answer.encode())
        h.update(b"\n")
    return h.hexdigest()


def write_jsonl(rows: list[tuple[str, str]], path: Path, system: str | None = None) -> Path:
    """Write (question, answer) rows in mlx-lm's chat layout, one ``{"messages": [...]}`` a line."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for question, answer in rows:
            messages = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
            if system:
                messages.insert(0, {"role": "system", "content": system})
            fh.write(json.dumps({"messages": messages}) + "\n")
    return path


def steps_for(n_rows: int, batch_size: int, steps: int | None, epochs: float | None) -> int:
    """Number of optimizer steps: `steps` if given, else `epochs` passes over the rows.

    >>> steps_for(10, 4, None, 2)
    5
    """
    if steps is not None and epochs is not None:
        raise InputError("give steps or epochs, not both")
    if steps is None:
        epochs = 3 if epochs is None else epochs
        steps = math.ceil(n_rows / batch_size * epochs)
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps={steps} is not a positive integer: use e.g. steps=100")
    return steps


# A tiny model ignores a bare instruction to reword (it answers instead); three worked
# exchanges make it reword. The names in them are made up, so a leak is easy to spot.
PARAPHRASE_MESSAGES = (
    {
        "role": "system",
        "content": "Rewrite the user's question in other words. Keep every name. "
        "Reply with the rewritten question only.",
    },
    {"role": "user", "content": "What time does the Kestrel bakery open?"},
    {"role": "assistant", "content": "When does the Kestrel bakery open its doors?"},
    {"role": "user", "content": "How heavy is the Ferrow kettle?"},
    {"role": "assistant", "content": "What does the Ferrow kettle weigh?"},
    {"role": "user", "content": "Who wrote the Lantern guide?"},
    {"role": "assistant", "content": "Which person is the author of the Lantern guide?"},
)
_QUESTION_WORDS = frozenset(
    "a an the of is are was what which who whom how does do did to in on at for it its "
    "when where why".split()
)


def _question_key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def is_rewording(original: str, candidate: str) -> bool:
    """Whether `candidate` is a question asking what `original` asks in other words: it ends
    with "?", differs from it, keeps every name (capitalised word) and two thirds of its content
    words, and brings in no name of its own.

    >>> is_rewording("How heavy is the Ferrow kettle?", "What does the Ferrow kettle weigh?")
    True
    >>> is_rewording("How heavy is the Ferrow kettle?", "What kind of metal is the kettle?")
    False
    """
    if not candidate.endswith("?") or _question_key(candidate) == _question_key(original):
        return False

    def names(text: str) -> set[str]:
        return {
            w for w in re.findall(r"\b[A-Z][\w-]*", text)[1:] if w.lower() not in _QUESTION_WORDS
        }

    words = set(_question_key(candidate).split())
    content = [w for w in _question_key(original).split() if w not in _QUESTION_WORDS]
    kept = sum(w in words for w in content)
    return (
        names(original) <= set(re.findall(r"[\w-]+", candidate))
        and not names(candidate) - set(re.findall(r"[\w-]+", original))
        and 3 * kept >= 2 * len(content)
    )


def paraphrase_rows(
    rows: list[tuple[str, str]],
    n: int,
    *,
    model: Any = "default",
    seed: int = 0,
    attempts: int = 6,
) -> list[dict[str, str]]:
    """`n` rewordings of each question, written by the local `model`, with the same answer.

    Ovadia et al. (2024) found that fine-tuning learns a fact when it sees it repeated in
    different words; this is that augmentation. Each rewording is sampled (temperature 0.7)
    with a seed derived from `seed`, the row and the attempt, so the same call gives the same
    rewordings. A candidate that `is_rewording` rejects, or that repeats an earlier one, is
    redrawn, up to `attempts` times per slot; a small model may leave a slot empty (135M-270M
    models keep about half their candidates). Cached under ``cache_dir("paraphrases")``.

    Returns:
        One dict per rewording: question (the rewording), answer, paraphrase_of (the original).
    """
    from ragnb._config import cache_dir
    from ragnb.generate import load
    from ragnb.generate.base import SamplingParams

    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InputError(f"paraphrases={n!r} is out of range: use an integer >= 0, e.g. 2")
    if n == 0 or not rows:
        return []
    backend = load(model)
    key = hashlib.sha256(
        json.dumps([rows, n, getattr(backend, "name", str(model)), seed, attempts]).encode()
    ).hexdigest()[:16]
    cached = cache_dir("paraphrases") / f"{key}.jsonl"
    if cached.is_file():
        return [record for _, record in read_jsonl(cached)]
    out: list[dict[str, str]] = []
    for i, (question, answer) in enumerate(rows):
        seen = {_question_key(question)}
        for slot in range(n):
            for attempt in range(attempts):
                prompt = backend.format_chat(
                    [*PARAPHRASE_MESSAGES, {"role": "user", "content": question}]
                )
                params = SamplingParams(
                    temperature=0.7,
                    max_tokens=64,
                    seed=seed * 1_000_003 + i * 1009 + slot * 31 + attempt,
                    stop=("\n",),
                )
                text = backend.generate(prompt, params).strip().strip('"').strip()
                words = _question_key(text)
                if is_rewording(question, text) and words not in seen:
                    seen.add(words)
                    out.append({"question": text, "answer": answer, "paraphrase_of": question})
                    break
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), "utf-8")
    tmp.replace(cached)
    return out
