"""The packaged Skymere corpus: its files, its question sets, and the facts they agree on."""

from __future__ import annotations

import polars as pl
import pytest

from ragnb import datasets
from ragnb.errors import InputError


def _files(folder):
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.md"))}


def test_manual_and_new_facts_are_separate_markdown_folders():
    manual, new = _files(datasets.manual_dir()), _files(datasets.new_facts_dir())
    assert len(manual) == 13 and len(new) == 2
    assert not set(manual) & set(new)
    for text in [*manual.values(), *new.values()]:
        assert text.startswith("# ") and "\n## " in text


def test_questions_have_the_documented_columns_and_sizes():
    frame = datasets.questions()
    assert frame.columns == ["question", "answer", "response", "split", "doc_id"]
    sizes = dict(frame.group_by("split").len().iter_rows())
    assert sizes == {"train": 24, "paraphrase": 24, "heldout": 8, "new_facts": 6, "absent": 6}
    assert frame["question"].n_unique() == frame.height
    assert frame["response"].str.starts_with(datasets.STYLE_PREFIX).all()


@pytest.mark.parametrize("split", ["train", "paraphrase", "heldout", "new_facts"])
def test_every_answer_is_in_exactly_one_file_and_that_is_its_doc_id(split):
    folder = datasets.new_facts_dir() if split == "new_facts" else datasets.manual_dir()
    files = _files(folder)
    for question, answer, doc_id in (
        datasets.questions(split).select("question", "answer", "doc_id").iter_rows()
    ):
        holders = [name for name, text in files.items() if datasets.contains_answer(text, answer)]
        assert holders == [doc_id], (question, answer, holders)


def test_new_facts_are_not_in_the_manual():
    manual = "\n".join(_files(datasets.manual_dir()).values())
    for answer in datasets.questions("new_facts")["answer"]:
        assert not datasets.contains_answer(manual, answer), answer


def test_paraphrases_line_up_with_train_and_heldout_facts_are_new():
    train, para = datasets.questions("train"), datasets.questions("paraphrase")
    assert train["answer"].to_list() == para["answer"].to_list()
    assert (train["question"] != para["question"]).all()
    heldout = set(datasets.questions("heldout")["answer"])
    assert not heldout & set(train["answer"])


def test_absent_questions_have_no_answer_and_no_document():
    absent = datasets.questions("absent")
    assert absent["answer"].null_count() == absent["doc_id"].null_count() == absent.height
    assert all(datasets.says_unknown(r) for r in absent["response"])


def test_every_manual_file_is_the_source_of_some_question():
    used = set(pl.concat([datasets.questions(s) for s in ("train", "heldout")])["doc_id"])
    assert used == set(_files(datasets.manual_dir()))


def test_contains_answer_ignores_case_and_spacing_but_not_digits():
    assert datasets.contains_answer("Hold it for 6\u00a0SECONDS.", "6 seconds")
    assert datasets.contains_answer("down to \u221238 \u00b0C", "-38")
    assert not datasets.contains_answer("It lasts 91 days.", "19 days")


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("The context does not mention the price.", True),
        ("I don't know.", True),
        ("That is not in the manual.", True),
        ("There is no information about colours.", True),
        ("The factory reset code is 4471 [1].", False),
        ("It works with HomeKit.", False),
    ],
)
def test_says_unknown(text, unknown):
    assert datasets.says_unknown(text) is unknown


def test_bad_names_are_input_errors():
    with pytest.raises(InputError, match="unknown split 'test'"):
        datasets.questions("test")
    with pytest.raises(InputError, match="unknown dataset 'nope'"):
        datasets.manual_dir("nope")
