"""Write the teaching notebooks 01-03 from the cells below (no outputs), so their source stays
reviewable as plain Python. Run it after editing a cell:

    .venv/bin/python notebooks/make_notebooks.py

tests/test_notebooks.py executes every notebook in this folder on a real kernel.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str):
    return new_code_cell(text.strip())


QUICKSTART = [
    md("""
# 1. Quickstart: a knowledge base, a question, an answer with citations

This notebook asks questions about the **Skymere S3**, a home weather station that does not
exist. Its manual ships inside ragnb (`ragnb.datasets`), and because every fact in it is made up,
no language model can know them from pre-training: a right answer has to come from the manual.

Everything here runs offline on a laptop CPU: retrieval with BM25 and a small embedding model,
answers from SmolLM2-135M (a 98 MB model) through llama.cpp.
"""),
    md("""
## Load the extension

`%load_ext ragnb` registers two magics: `%rag` (a line of commands: `add`, `search`,
`status`, ...) and `%%rag` (the cell body is a question).
"""),
    code("%load_ext ragnb"),
    md("""
Short answers keep this notebook quick; settings apply to every later cell
(`%config RagMagics.max_tokens = 64` does the same).
"""),
    code("%rag config max_tokens=64 top_k=3"),
    md("""
## Add documents

`%rag add` takes paths, globs, or the name of a Python variable holding a path, a list of paths
or a DataFrame. Each Markdown file becomes a document, cut into chunks at its headings.
"""),
    code("""
from ragnb import datasets

manual = datasets.manual_dir()
sorted(p.name for p in manual.glob("*.md"))
"""),
    code("%rag add manual"),
    code("%rag status"),
    md("""
## Look at retrieval before generation

`%rag search` shows what the model would be given: the best chunks for a query, with the rank
each retriever gave them (`bm25_rank` for keywords, `dense_rank` for meaning). Hybrid search
fuses the two lists.
"""),
    code("%rag search how do I pair the Mast with the console"),
    md("""
## Ask

The body of a `%%rag` cell is the question. The answer streams in, then the sources it cited:
`[1]` in the text points to passage 1 of the prompt. A citation to a passage that was not in the
prompt is flagged as invalid. (A 135M-parameter model often forgets to cite, and sometimes
misreads its passages; the retrieved passages are kept with every answer, so you can check.)
"""),
    code("""
%%rag --out answer
How long do you hold the MODE button to switch between metric and imperial units?
"""),
    md("The answer is a Python object too (`--out answer` stored it):"),
    code("""
print(answer.text)
answer.citations.select("number", "doc_id", "title", "text")
"""),
    code("answer.timings"),
    md("""
## Without retrieval

`--closed-book` sends the question alone. The model has never read this manual, so whatever
it says about the MODE button is a guess: this is the gap retrieval fills.
"""),
    code("""
%%rag --closed-book
How long do you hold the MODE button to switch between metric and imperial units?
"""),
    md("""
## The same thing in Python

Each magic is one call of the Python API, so a notebook can move to a script unchanged:
"""),
    code("""
import ragnb

kb = ragnb.KnowledgeBase()
kb.add(manual)
rag = ragnb.RAG(kb)
reply = rag.ask("How long does the Mast run in complete darkness?", k=3, max_tokens=48)
reply
"""),
    md("""
## Documents change; the index follows

Adding a document is one call, with no retraining. The firmware 3.2 release notes are *not*
in the manual; after adding them, the same question finds its answer. `%rag use kb` puts the
Python knowledge base behind the magics.
"""),
    code("""
question = "Which error code means the hail sensor is tilted?"
before = rag.ask(question, k=3, max_tokens=40)
kb.add(datasets.new_facts_dir())
after = rag.ask(question, k=3, max_tokens=40)
print("before:", before.text)
print("after: ", after.text)
after.citations.select("number", "doc_id")
"""),
    code("%rag use kb"),
    code("""
%%rag
How long does the firmware 3.2 update take?
"""),
    md("""
Next: `02_retrieval_explained.ipynb` measures BM25, dense and hybrid retrieval, and
`03_rag_vs_finetuning.ipynb` fine-tunes the model and compares the two approaches.
"""),
]


RETRIEVAL = [
    md("""
# 2. Retrieval explained: BM25, dense and hybrid search, measured

An answer can only be as good as the passages retrieved for it. This notebook compares the three
search modes of a ragnb knowledge base on a real question set:

- **BM25** scores a chunk by the query words it contains, weighting rare words more;
- **dense** search embeds query and chunk with a small sentence-embedding model
  (all-MiniLM-L6-v2) and ranks by cosine similarity: it matches meaning, not spelling;
- **hybrid** fuses the two ranked lists into one.

The question set is the Debian FAQ (147 documents, 120 questions) when the evaluation folder
`shared/eval/debfaq` sits beside the repository, and otherwise the Skymere manual packaged with
ragnb, turned into the same layout, so the notebook runs on a fresh clone. `CORPUS` below picks
one explicitly, and the cell says which one it used and why.
"""),
    code("""
CORPUS = "auto"  # "debfaq", "skymere", or "auto": the Debian FAQ when its folder is there

import json
import tempfile
from pathlib import Path

import polars as pl

import ragnb
from ragnb import datasets


def find_repo_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def skymere_as_beir() -> Path:
    \"\"\"The packaged manual in BEIR layout: one document per chapter; the train and heldout
    questions as queries, each relevant to the chapter that holds its answer.\"\"\"
    folder = Path(tempfile.mkdtemp()) / "skymere"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as out:
        for path in sorted(datasets.manual_dir().glob("*.md")):
            text = path.read_text()
            title = text.splitlines()[0].lstrip("# ")
            out.write(json.dumps({"_id": path.name, "title": title, "text": text}) + "\\n")
    questions = pl.concat([datasets.questions("train"), datasets.questions("heldout")])
    with open(folder / "queries.jsonl", "w") as out, open(folder / "qrels/test.tsv", "w") as qrels:
        qrels.write("query-id\\tcorpus-id\\tscore\\n")
        for i, row in enumerate(questions.iter_rows(named=True)):
            out.write(json.dumps({"_id": f"q{i}", "text": row["question"]}) + "\\n")
            qrels.write(f"q{i}\\t{row['doc_id']}\\t1\\n")
    return folder


shared = find_repo_root(Path.cwd()).parent / "shared" / "eval" / "debfaq"
found = (shared / "corpus.jsonl").is_file()
if CORPUS == "debfaq" and not found:
    raise FileNotFoundError(f"CORPUS = 'debfaq' but {shared} has no corpus.jsonl")
if CORPUS == "debfaq" or (CORPUS == "auto" and found):
    eval_dir = shared
    print(f"corpus: the Debian FAQ from {shared}")
else:
    eval_dir = skymere_as_beir()
    why = "as asked" if CORPUS == "skymere" else f"{shared} is not there"
    print(f"corpus: the packaged Skymere manual ({why})")
data = ragnb.evaluate.load_beir(eval_dir)
print(f"{data.name}: {data.corpus.height} documents, {data.queries.height} questions")
data.corpus.head(3)
"""),
    md("""
## Build the knowledge base

One document per corpus line; the knowledge base chunks each document and builds both indexes
(BM25 and the embeddings). It is cached on disk, so a second run loads it instead.
"""),
    code("""
kb = ragnb.evaluate.build_kb(data)
kb
"""),
    md("""
## One question, three rankings

Each hit carries the rank every retriever gave it (`bm25_rank`, `dense_rank`; null where that
retriever did not return the chunk). The document marked relevant for this question is `relevant`.
"""),
    code("""
query_id, query = data.queries.row(0)
relevant = set(data.qrels[query_id])
print("question:", query)
print("relevant:", relevant)

columns = ["rank", "doc_id", "title", "bm25_rank", "dense_rank", "score"]
for mode in ("bm25", "dense", "hybrid"):
    hits = kb.search(query, k=5, mode=mode)
    found = hits.with_columns(pl.col("doc_id").is_in(list(relevant)).alias("relevant"))
    print(f"\\n{mode}:")
    print(found.select(*columns, "relevant"))
"""),
    md("""
## Where the two retrievers disagree

Over all questions: how often is the relevant document in the top 5 of one retriever but not the
other? Those questions are what fusion can win (or lose).
"""),
    code("""
def top_docs(mode: str, k: int = 5) -> dict[str, set[str]]:
    return {
        qid: set(kb.search(text, k=k, mode=mode)["doc_id"].to_list())
        for qid, text in data.queries.select("query_id", "text").iter_rows()
    }


bm25_top, dense_top = top_docs("bm25"), top_docs("dense")
outcome = {"both": 0, "bm25 only": 0, "dense only": 0, "neither": 0}
for qid, relevant_docs in data.qrels.items():
    in_bm25 = bool(relevant_docs.keys() & bm25_top[qid])
    in_dense = bool(relevant_docs.keys() & dense_top[qid])
    key = "both" if in_bm25 and in_dense else "bm25 only" if in_bm25 else (
        "dense only" if in_dense else "neither")
    outcome[key] += 1
outcome
"""),
    md("""
## Recall@k for each mode

`ragnb.evaluate.beir` runs every question in every mode and scores the ranked documents:
recall@k is the share of questions whose relevant document is in the first k, MRR@10 the mean
of 1/rank of the first relevant document, nDCG@10 a rank-discounted gain.
"""),
    code("""
ks = [1, 2, 3, 5, 10, 20]
scores = ragnb.evaluate.beir(eval_dir, modes=["bm25", "dense", "hybrid"], ks=ks, kb=kb)
scores
"""),
    code("""
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
for row in scores.iter_rows(named=True):
    ax.plot(ks, [row[f"recall@{k}"] for k in ks], marker="o", label=row["mode"])
ax.set_xscale("log")
ax.set_xticks(ks, [str(k) for k in ks])
ax.set_xlabel("k (documents retrieved)")
ax.set_ylabel("recall@k")
ax.set_ylim(0, 1)
ax.set_title(f"{data.name}: recall@k by search mode")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
"""),
    md("""
## Explore the knowledge base

The explorer widget lists the chunks, runs searches in every mode side by side and shows each
retriever's rank (it needs a live kernel; a static render shows its text form).
"""),
    code("ragnb.explore(kb)"),
    md("""
What to take away: BM25 is exact and cheap but misses rewordings; dense search catches
meaning but can drift to a near-topic; hybrid fusion helps when both retrievers are of similar
strength and can hurt when one is much weaker, which is why the table above is worth
measuring on your own documents before choosing a default.
"""),
]


FINETUNING = [
    md("""
# 3. RAG vs fine-tuning, measured on your own documents

Two ways to teach a small model the Skymere manual:

- **RAG** leaves the model alone and puts the relevant passages in its prompt at answer time;
- **fine-tuning** changes the model's weights (here a LoRA adapter) on labelled
  question/answer pairs, then answers closed-book.

Textbooks compare them in a table (knowledge source, update, cost, traceability,
hallucination...). This notebook fills that table with numbers measured in this run. The model
is tiny (135M parameters) and the training short, so expect modest accuracy: the point is the
*differences* between the two columns, and that you can rerun it on your own documents.
"""),
    code("""
import polars as pl

import ragnb
from ragnb import datasets

kb = ragnb.KnowledgeBase()
kb.add(datasets.manual_dir())

# Every 4th fact (6 of 24, across the chapters): small, so the notebook runs in minutes on a CPU
train = datasets.questions("train").gather_every(4)
paraphrase = datasets.questions("paraphrase").gather_every(4)  # the same facts, reworded
heldout = datasets.questions("heldout").head(3)  # manual facts never trained on
new_facts = datasets.questions("new_facts").head(3)  # facts only in new_facts_dir()
absent = datasets.questions("absent").head(3)  # in neither: the right answer is "don't know"
train.select("question", "answer", "response")
"""),
    md("""
Every training answer (`response`) is written in one house style, starting
*"Per the Skymere manual:"*, so we can also see which approach picks up a style.

## Fine-tune

`ragnb.finetune.train` trains a LoRA adapter on the pairs with torch on the CPU and writes it
where llama.cpp can load it. We train on the manual facts **and** the new facts (the firmware
notes), so that both approaches get to know the same things.
"""),
    code("""
pairs = pl.concat([train, new_facts]).select("question", pl.col("response").alias("answer"))
ft = ragnb.finetune.train(pairs, steps=20)  # cached: a rerun reuses it
ft
"""),
    code("""
keys = ("base_model", "engine", "train_seconds", "hyperparameters")
{key: ft.manifest.get(key) for key in keys}
"""),
    md("""
## Side by side

`ragnb.compare` asks each question four ways: the base model closed-book, the base model with
retrieval (RAG), the fine-tuned model closed-book, and the fine-tuned model with retrieval.
The knowledge base does not hold the firmware notes yet, so only fine-tuning has seen them.
"""),
    code("""
questions = pl.concat([paraphrase.head(2), new_facts.head(1), absent.head(1)])
table = ragnb.compare(questions, kb=kb, models=["default", ft], max_tokens=40)
table.select("question", "arm", "answer", "contains_reference", "cited", "citation_precision")
"""),
    code("""
from ragnb.widgets import ComparisonView

ComparisonView(table)
"""),
    md("""
## The scorecard

`ragnb.scorecard` measures each aspect of the classic table on these documents:

- it indexes a copy of the knowledge base (timing it, sampling memory) and adds the firmware notes
  to it: the knowledge update of RAG;
- it reuses the fine-tuned model (its training time comes from its manifest);
- it asks both arms the training questions, their paraphrases, held-out questions, the new facts
  and the absent ones, at temperature 0, and scores every answer.

Nothing in the table is typed in: change the documents or the questions and the cells change.
(`%rag scorecard` runs the same thing from a magic.)
"""),
    code("""
card = ragnb.scorecard(
    kb,
    train,
    new_docs=datasets.new_facts_dir(),
    new_questions=new_facts,
    absent_questions=absent,
    paraphrase_questions=paraphrase,
    heldout_questions=heldout,
    finetuned=ft,
    max_tokens=40,
)
card
"""),
    md("The table is a polars DataFrame; the numbers behind it and every answer are kept too:"),
    code("card.df"),
    code("""
card.measurements.answers.select("arm", "split", "question", "answer", "correct", "cited")
"""),
    md("""
How to read it: RAG's column moves when the documents move (a new file is one `kb.add`
away, and its answers cite their sources); fine-tuning's moves only by training again, and its
answers carry no source to check. Fine-tuning is what picks up the house style. With a model this
small, neither arm is reliable on facts; try `model=` with a larger GGUF from
`ragnb.list_models()` or your own (see docs/guide.md).
"""),
]


def write(name: str, cells: list, folder: Path = HERE) -> Path:
    nb = new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):  # stable ids keep regenerated files diff-free
        cell.id = f"c{i:02d}"
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = folder / name
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_retrieval_explained.ipynb": RETRIEVAL,
    "03_rag_vs_finetuning.ipynb": FINETUNING,
}


def main(folder: Path = HERE) -> list[Path]:
    """Write every notebook into `folder`; return their paths."""
    return [write(name, cells, folder) for name, cells in NOTEBOOKS.items()]


if __name__ == "__main__":
    for path in main():
        print("wrote", path)
