"""The %rag / %%rag magics in a real IPython shell, over a real knowledge base and the real
SmolLM2 model: every subcommand, every option, interpolation, streaming, the returned Answer,
HTML safety and the error paths."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from ragnb import datasets

pytestmark = pytest.mark.slow

EVIL = (
    "The Zorblax gadget manual. <script>alert('x')</script> "
    "<img src=x onerror=alert(1)> </table> The Zorblax unlock word is quasar-77."
)
QUESTION = "What is the factory reset code of the Skymere S3?"
FAST = "--max-tokens 8"  # the answers' content is not under test here, only what reaches them


@pytest.fixture(scope="module")
def ip():
    """One real IPython shell for the module, with the extension loaded and the manual added."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "ragnb")
    shell.user_ns["manual"] = datasets.manual_dir()
    shell.run_line_magic("rag", "add manual")
    shell.user_ns["evil"] = pl.DataFrame({"name": ["zorblax.html"], "body": [EVIL]})
    shell.run_line_magic("rag", "add evil --text body --id name --kb evil")
    yield shell


@pytest.fixture
def magics(ip):
    return ip.magics_manager.registry["RagMagics"]


def line(ip, text: str):
    return ip.run_line_magic("rag", text)


def ask(ip, options: str, question: str = QUESTION):
    return ip.run_cell_magic("rag", options, question)


def html_of(ip, obj) -> str:
    """The text/html a frontend would receive for `obj`."""
    data, _ = ip.display_formatter.format(obj)
    return data.get("text/html", "")


def run_cell_output(ip, capfd, source: str) -> tuple[object, str]:
    """Run `source` as a cell; return (the cell result, everything printed to stdout+stderr)."""
    result = ip.run_cell(source)
    out, err = capfd.readouterr()
    return result, out + err


# ---------------------------------------------------------------- subcommands


def test_add_path_variable_list_and_dataframe(ip, magics):
    line(ip, "use adds")
    try:
        manual = datasets.manual_dir()
        ip.user_ns["one"] = str(manual / "11-reset.md")
        line(ip, "add one")
        assert magics.kb().chunks["doc_id"].n_unique() == 1
        line(ip, f"add {manual / '12-warranty.md'}")
        assert magics.kb().chunks["doc_id"].n_unique() == 2
        ip.user_ns["two"] = [str(manual / "03-power.md"), str(manual / "04-display.md")]
        out = line(ip, "add two")
        assert magics.kb().chunks["doc_id"].n_unique() == 4
        assert "+2 documents" in repr(out)
        ip.user_ns["frame"] = pl.DataFrame({"t": ["Tarrow Bay is a town."], "i": ["town"]})
        line(ip, "add frame --text t --id i")
        assert "town" in magics.kb().chunks["doc_id"].to_list()
    finally:
        line(ip, "use default")


def test_remove_drops_the_document(ip, magics):
    line(ip, "use removing")
    try:
        line(
            ip,
            f"add {datasets.manual_dir() / '11-reset.md'} {datasets.manual_dir() / '03-power.md'}",
        )
        doc_ids = sorted(magics.kb().chunks["doc_id"].unique().to_list())
        line(ip, f"remove {doc_ids[0]}")
        assert magics.kb().chunks["doc_id"].unique().to_list() == [doc_ids[1]]
    finally:
        line(ip, "use default")


def test_search_shows_hits_with_per_retriever_ranks(ip):
    table = line(ip, "search factory reset code --k 3 --out hits")
    hits = ip.user_ns["hits"]
    assert hits.height == 3
    assert hits["doc_id"][0] == "11-reset.md"
    html = html_of(ip, table)
    assert "bm25 rank" in html and "dense rank" in html
    assert "11-reset.md" in repr(table)


def test_search_options_change_the_hits(ip):
    line(ip, "search factory reset code --k 2 --mode bm25 --out h")
    assert ip.user_ns["h"].height == 2
    assert ip.user_ns["h"]["dense_rank"].null_count() == 2
    line(ip, "search factory reset code --k 2 --mode dense --out h")
    assert ip.user_ns["h"]["bm25_rank"].null_count() == 2
    line(ip, "search factory reset code --k 3 --fusion convex --alpha 0 --out h")
    assert ip.user_ns["h"]["bm25_rank"][0] == 1
    line(ip, "search factory reset code --k 3 --fusion convex --alpha 1 --out h")
    assert ip.user_ns["h"]["dense_rank"][0] == 1
    line(ip, """search battery --k 3 --where 'pl.col("doc_id") == "03-power.md"' --out h""")
    assert set(ip.user_ns["h"]["doc_id"]) == {"03-power.md"}


def test_search_interpolates_user_variables(ip):
    ip.user_ns["topic"] = "factory reset code"
    line(ip, "search {topic} --k 1 --out h")
    assert ip.user_ns["h"]["doc_id"][0] == "11-reset.md"


def test_status_reports_corpus_and_model(ip, magics):
    status = repr(line(ip, "status"))
    docs = magics.kb().chunks["doc_id"].n_unique()
    assert re.search(rf"documents\s+{docs}\b", status)
    assert "model" in status and "backend" in status


def test_status_reads_in_words_without_raw_settings_or_an_empty_header(ip):
    status = line(ip, "status")
    bundle = status._repr_mimebundle_()
    assert "(of " not in status.text and "{" not in status.text and "stale" not in status.text
    assert "k1=1.5" in status.text  # BM25 settings as key=value
    assert "<thead>" not in bundle["text/html"]


def test_search_marks_query_terms_and_reads_markdown_tables(ip):
    hits = line(ip, "search what does error code E-47 mean --k 3 --mode bm25")
    html = hits._repr_mimebundle_()["text/html"]
    assert "<mark>error</mark>" in html.lower() or "<mark>Error</mark>" in html
    assert "|---|" not in html and "E-09 · console memory full" in html


def test_models_lists_the_installed_default(ip):
    models = line(ip, "models")
    assert isinstance(models, pl.DataFrame)
    assert models.filter(pl.col("default"))["installed"].to_list() == [True]


def test_save_load_round_trip(ip, magics, tmp_path):
    target = tmp_path / "kb"
    line(ip, f"save {target}")
    before = magics.kb().chunks
    line(ip, "use loaded")
    try:
        line(ip, f"load {target}")
        assert magics.current == "loaded"
        assert magics.kb().chunks["chunk_id"].to_list() == before["chunk_id"].to_list()
    finally:
        line(ip, "use default")


def test_use_switches_between_named_knowledge_bases(ip, magics):
    line(ip, "use fresh")
    try:
        assert magics.kb().chunks.height == 0
        assert "'fresh'" in repr(line(ip, "use"))
    finally:
        line(ip, "use default")
    assert magics.kb().chunks.height > 0


def test_use_adopts_a_python_knowledge_base(ip, magics):
    import ragnb

    kb = ragnb.KnowledgeBase()
    ip.user_ns["mine"] = kb
    line(ip, "use mine")
    try:
        assert magics.kb() is kb
    finally:
        line(ip, "use default")


def test_config_shows_and_sets_settings(ip, magics):
    assert "top_k" in repr(line(ip, "config"))
    line(ip, "config top_k=2 stream=false")
    try:
        assert magics.top_k == 2 and magics.stream is False
        ip.run_line_magic("config", "RagMagics.top_k = 3")
        assert magics.top_k == 3
        line(ip, "search factory reset --out h")
        assert ip.user_ns["h"].height == 3
    finally:
        line(ip, "config top_k=4 stream=true")


def test_help_lists_subcommands_and_options(ip, capsys):
    line(ip, "--help")
    out = capsys.readouterr().out
    assert "scorecard" in out and "--closed-book" in out
    ip.run_cell_magic("rag", "--help", "ignored when --help is given")
    assert "--no-interpolate" in capsys.readouterr().out


def test_explore_returns_the_explorer(ip):
    from ragnb.widgets import Explorer

    view = line(ip, "explore factory reset")
    assert isinstance(view, Explorer)


def test_finetune_then_models_model_compare_and_scorecard(ip, capfd):
    """One small real fine-tune (reused from the cache on later runs), then everything that
    takes a fine-tuned model by name."""
    from ragnb.widgets import ComparisonView

    ip.user_ns["pairs"] = datasets.questions("train").head(2)
    # no --name: the default name hashes data and settings, so a rerun reuses the model
    tuned = line(ip, "finetune --data pairs --steps 1 --rank 4 --out ft")
    assert tuned is ip.user_ns["ft"]
    name = tuned.name
    models = line(ip, "models")
    assert models.filter(pl.col("name") == name)["kind"].to_list() == ["finetuned"]

    answer = ask(ip, f"--model {name} --no-stream {FAST}")
    assert name in answer.model

    view = ask(ip, f"--compare --models default,{name} {FAST}")
    assert isinstance(view, ComparisonView)
    assert set(view.arms) == {"base", "base+rag", "finetuned", "finetuned+rag"}

    card = line(ip, f"scorecard --data pairs --finetuned {name} --max-tokens 8 --out card")
    assert card is ip.user_ns["card"] and card.df.height > 0


# ---------------------------------------------------------------- %%rag


def test_cell_returns_answer_with_citations_and_underscore(ip, capfd):
    result, _ = run_cell_output(ip, capfd, f"%%rag --k 2 --max-tokens 40\n{QUESTION}")
    answer = result.result
    assert answer is ip.user_ns["_"]
    assert answer.question == QUESTION
    assert answer.hits.height == 2
    assert "4471" in answer.text


def test_streaming_prints_text_as_it_comes_and_no_stream_does_not(ip, capfd):
    result, printed = run_cell_output(ip, capfd, f"%%rag {FAST}\n{QUESTION}")
    streamed = printed.split("Out[")[0]
    # raw_text: the model's words as streamed (text may become "The documents do not say")
    assert result.result.raw_text.strip() and result.result.raw_text.strip()[:10] in streamed
    result, printed = run_cell_output(ip, capfd, f"%%rag {FAST} --no-stream\n{QUESTION}")
    assert result.result.raw_text.strip()[:10] not in printed.split("Out[")[0]


def test_options_reach_the_call(ip):
    assert ask(ip, f"--k 1 {FAST}").hits.height == 1
    assert ask(ip, f"--mode bm25 {FAST}").hits["dense_rank"].null_count() > 0
    closed = ask(ip, f"--closed-book {FAST}")
    assert closed.hits.height == 0 and closed.citations.height == 0 and closed.closed_book
    where = ask(ip, f"""--where 'pl.col("doc_id") == "03-power.md"' {FAST}""")
    assert set(where.hits["doc_id"]) == {"03-power.md"}
    assert ask(ip, "--max-tokens 3").timings["generation_tokens"] <= 3
    extractive = ask(ip, "--extractive --model no-such-model")  # no model is loaded
    assert extractive.model == "extractive" and extractive.support["supported"].all()
    evil = ask(ip, f"--kb evil --k 1 {FAST}", "What is the Zorblax unlock word?")
    assert evil.hits["doc_id"].to_list() == ["zorblax.html"]


def test_model_option_takes_a_gguf_path(ip):
    from ragnb.generate.models import resolve_model

    path = resolve_model("default").path
    answer = ask(ip, f"--model {path} --no-stream {FAST}")
    assert answer.text


def test_sampling_options_reach_the_model(ip):
    hot = "--temperature 1.2 --max-tokens 24 --no-stream --closed-book"
    q = "Write a short poem about the sea."
    ask(ip, f"{hot} --seed 1", q)  # warm llama.cpp's prompt cache: a cold first call can differ
    first = ask(ip, f"{hot} --seed 1", q).text
    assert ask(ip, f"{hot} --seed 1", q).text == first
    assert {ask(ip, f"{hot} --seed {s}", q).text for s in (2, 3)} != {first}


def test_interpolation_on_off_and_unknown_names(ip):
    ip.user_ns["part"] = "Mast"
    answer = ask(ip, f"--show-prompt {FAST}", "How high should the {part} be? {nobody}")
    assert answer.question == "How high should the Mast be? {nobody}"
    raw = ask(ip, f"--no-interpolate {FAST}", "How high should the {part} be?")
    assert raw.question == "How high should the {part} be?"


def test_show_prompt_and_out(ip, capfd):
    result, printed = run_cell_output(
        ip, capfd, f"%%rag --show-prompt --out kept {FAST}\n{QUESTION}"
    )
    assert "--- prompt ---" in printed
    assert ip.user_ns["kept"] is result.result


def test_interrupt_during_streaming_returns_cleanly(ip, magics, capsys):
    """A KeyboardInterrupt raised inside generation (what Ctrl-C does) ends the cell cleanly;
    the real signal through a kernel is tested in test_notebook_kernel.py."""
    import ragnb

    stream = ragnb.RAG(magics.kb()).ask(QUESTION, stream=True, max_tokens=64)

    class CtrlCAfterTwoChunks:
        closed = False

        def __iter__(self):
            for n, chunk in enumerate(stream):
                if n == 2:
                    raise KeyboardInterrupt
                yield chunk

        def close(self):
            self.closed = True
            stream.close()

        @property
        def answer(self):
            return stream.answer

    interrupted = CtrlCAfterTwoChunks()
    partial = magics._stream(interrupted)
    assert interrupted.closed
    assert "(interrupted)" in capsys.readouterr().out
    assert partial.timings["generation_tokens"] < 20  # stopped long before max_tokens=64
    assert ask(ip, FAST).text  # the next cell works


# ---------------------------------------------------------------- HTML safety


def _assert_escaped(html: str) -> None:
    assert "<script>" not in html and "<img" not in html and "</table> The" not in html
    assert "&lt;script&gt;" in html


def test_document_html_is_shown_as_text_everywhere(ip):
    table = line(ip, "search Zorblax --kb evil --k 1")
    _assert_escaped(html_of(ip, table))
    answer = ask(ip, "--kb evil --k 1 --max-tokens 30 --show-prompt", "Repeat the Zorblax manual.")
    _assert_escaped(html_of(ip, answer))
    from ragnb.magics import _streaming_bundle, prompt_display

    _assert_escaped(_streaming_bundle(EVIL)["text/html"])
    assert "quasar-77" in answer.prompt
    _assert_escaped(html_of(ip, prompt_display(answer.prompt)))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--mode fuzzy", "mode='fuzzy' is unknown"),
        ("--k 0", "k=0 must be a positive integer"),
        ("--where 'import os'", "not valid Python"),
        ("""--where '__import__("os").system("echo hi")'""", "not allowed"),
        ("--where 'pl.col(\"nope\") > 1'", "nope"),
        ("--model /nonexistent/model.gguf", "/nonexistent/model.gguf"),
        ("--backend nosuch", "nosuch"),
        ("--kb empty_one", "empty"),
        ("--fusion nope", "fusion='nope' is unknown"),
        ("--alpha 2", "alpha=2.0 must be a number in [0, 1]"),
        ("--max-tokens 0", "--max-tokens 0 is below 1"),
        ("""--where 'pl.col("position") > "x"'""", "filter failed"),
        ("--frobnicate", "unrecognized arguments"),
    ],
)
def test_errors_are_one_line_usage_errors(ip, capfd, options, message):
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        ask(ip, f"{FAST} {options}")
    assert "\n" not in str(caught.value)
    result, printed = run_cell_output(ip, capfd, f"%%rag {FAST} {options}\n{QUESTION}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in printed
    assert [ln for ln in printed.splitlines() if ln.strip()] == [
        f"UsageError: {result.error_in_exec}"
    ]


@pytest.mark.parametrize(
    "command",
    [
        "frobnicate",
        "add",
        "add /nonexistent/folder",
        "remove",
        "search",
        "save",
        "load /nonexistent",
        "use 3x",
    ],
)
def test_line_errors_are_usage_errors(ip, command):
    with pytest.raises(UsageError) as caught:
        line(ip, command)
    assert "\n" not in str(caught.value)


def test_empty_question_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="empty"):
        ask(ip, FAST, "   ")


def test_unknown_column_error_names_the_available_columns(ip):
    with pytest.raises(UsageError, match="doc_id"):
        line(ip, "search x --where 'year > 2020'")


def test_where_refuses_code(ip):
    ip.user_ns.pop("pwned", None)
    with pytest.raises(UsageError):
        line(ip, """search x --where '[x for x in ().__class__.__bases__]'""")
    with pytest.raises(UsageError):
        line(ip, """search x --where 'pl.col("text").map_elements(print)'""")


def test_remove_unknown_document_keeps_the_data(ip, magics):
    before = magics.kb().chunks.height
    with pytest.raises(UsageError):
        line(ip, "remove no-such-doc.md")
    assert magics.kb().chunks.height == before


def test_missing_path_in_add_keeps_the_data(ip, magics, tmp_path):
    before = magics.kb().chunks.height
    with pytest.raises(UsageError):
        line(ip, f"add {tmp_path / 'missing.md'}")
    assert magics.kb().chunks.height == before
    assert Path(tmp_path).exists()
