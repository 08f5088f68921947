"""Loaders: each format becomes sections with heading paths; bad files are skipped, warned."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest

from ragnb.corpus.loaders import (
    LoaderWarning,
    Section,
    expand_paths,
    load_file,
    looks_like_path,
    parse_html,
    parse_markdown,
    parse_rst,
    text_document,
)
from ragnb.errors import InputError

CORPUS = Path(__file__).parent / "data" / "corpus"


def tiny_pdf(pages: list[str], title: str = "Teapot Manual") -> bytes:
    """A valid PDF with one line of Helvetica text per page (written by hand, no library)."""
    n = len(pages)
    page_ids = [3 + 2 * i for i in range(n)]
    font_id, info_id = 3 + 2 * n, 4 + 2 * n
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % i for i in page_ids)
        + b"] /Count %d >>" % n,
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info_id: b"<< /Title (" + title.encode() + b") >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = b"BT /F1 12 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (page_id + 1, font_id)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        info_id,
        xref,
    )
    return bytes(out)


def headings(doc):
    return [s.heading for s in doc.sections]


# ---------------------------------------------------------------- formats


def test_markdown_headings_make_the_path_and_code_fences_are_not_headings():
    doc = load_file(CORPUS / "guide.md")
    assert doc.title == "Teapot Guide"
    assert doc.doc_id == "guide.md"
    assert headings(doc) == [
        ("Teapot Guide",),
        ("Teapot Guide", "Installation"),
        ("Teapot Guide", "Installation", "Linux users"),
        ("Teapot Guide", "Cleaning"),
        ("Teapot Guide", "Setext heading"),
    ]
    linux = doc.sections[2].text
    assert "# this is a comment, not a heading" in linux
    assert linux.rstrip().endswith("```")


def test_markdown_heading_levels_can_skip_and_come_back():
    sections = parse_markdown("### deep\na\n# top\nb\n## mid\nc")
    assert [s.heading for s in sections] == [("deep",), ("top",), ("top", "mid")]


def test_rst_levels_follow_the_order_adornments_appear():
    doc = load_file(CORPUS / "notes.rst")
    assert doc.title == "Release notes"
    assert headings(doc) == [
        ("Release notes",),
        ("Release notes", "Version 2.0"),
        ("Release notes", "Version 2.0", "Fixes"),
    ]
    assert parse_rst("no headings here\n\njust text") == [
        Section((), "no headings here\n\njust text")
    ]


def test_html_is_text_only_without_script_or_style():
    doc = load_file(CORPUS / "page.html")
    assert doc.title == "Warranty & Support"  # <title>, entities decoded
    text = doc.text
    assert "two years" in text and "555-0100" in text
    assert "do-not-index" not in text and "color: red" not in text
    assert "Enable JavaScript" not in text
    assert headings(doc) == [("Warranty",), ("Warranty", "Claims")]
    assert parse_html("<p>a<br>b</p>")[1] == [Section((), "a\n\nb")]


def test_sloppy_html_keeps_its_text():
    title, sections = parse_html(
        "<html><head><title>T</title><body><h1>Open heading<p>Body text.<h2>Next</h2>More."
    )
    assert title == "T"
    assert sections == [
        Section(("Open heading",), "Body text."),
        Section(("Open heading", "Next"), "More."),
    ]


def test_notebook_keeps_markdown_and_code_but_not_outputs():
    doc = load_file(CORPUS / "brew.ipynb")
    assert doc.title == "Brewing notebook"
    assert "minutes = 3" in doc.text and "Green tea needs three minutes." in doc.text
    assert "OUTPUT-SHOULD-NOT-APPEAR" not in doc.text
    assert "raw cell ignored" not in doc.text
    assert headings(doc) == [("Brewing notebook",), ("Brewing notebook", "Results")]


def test_python_sections_by_top_level_definition():
    doc = load_file(CORPUS / "tool.py")
    assert doc.title == "tool"
    assert headings(doc) == [(), ("def brew",), ("def decorated",), ("class Kettle",)]
    assert doc.sections[2].text.startswith("@staticmethod")  # decorator kept with its function


def test_python_that_does_not_parse_is_one_section(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def f(:\n    pass\n")
    doc = load_file(path)
    assert headings(doc) == [()]
    assert "def f(:" in doc.text


def test_plain_text_title_is_the_file_stem():
    doc = load_file(CORPUS / "plain.txt")
    assert doc.title == "plain"
    assert doc.sections == [
        Section((), "Plain text notes.\n\nThe teapot whistles when the water boils.")
    ]


def test_pdf_pages_become_sections(tmp_path):
    pytest.importorskip("pypdf")
    path = tmp_path / "manual.pdf"
    path.write_bytes(tiny_pdf(["The teapot holds six cups.", "Descale it monthly."]))
    doc = load_file(path)
    assert doc.title == "Teapot Manual"
    assert headings(doc) == [("page 1",), ("page 2",)]
    assert "six cups" in doc.sections[0].text and "Descale" in doc.sections[1].text


def test_broken_pdf_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.warns(LoaderWarning, match="broken.pdf"):
        assert load_file(path) is None


def test_pdf_without_pypdf_names_the_install_command(tmp_path, monkeypatch):
    path = tmp_path / "manual.pdf"
    path.write_bytes(tiny_pdf(["text"]))
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` fail
    with pytest.warns(LoaderWarning, match=r'manual\.pdf.*pip install "ragnb\[pdf\]"'):
        assert load_file(path) is None


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("name", "why"),
    [("image.bin", "unknown file type"), ("latin1.txt", "not UTF-8")],
)
def test_bad_files_are_skipped_with_a_warning_naming_them(name, why):
    with pytest.warns(LoaderWarning, match=f"{name}.*{why}"):
        assert load_file(CORPUS / name) is None


def test_binary_content_with_a_text_extension_is_skipped(tmp_path):
    path = tmp_path / "fake.md"
    path.write_bytes(b"\x00\x00\x00\xff")
    with pytest.warns(LoaderWarning, match="fake.md.*binary"):
        assert load_file(path) is None


def test_invalid_notebook_json_is_skipped(tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text("{not json")
    with pytest.warns(LoaderWarning, match="bad.ipynb"):
        assert load_file(path) is None


def test_empty_file_is_skipped(tmp_path):
    path = tmp_path / "empty.md"
    path.write_text("   \n")
    with pytest.warns(LoaderWarning, match="empty.md.*no text"):
        assert load_file(path) is None


# ---------------------------------------------------------------- paths and raw text


def test_folder_expands_recursively_with_relative_ids(tmp_path):
    root = tmp_path / "docs"
    shutil.copytree(CORPUS, root)
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("hidden")
    ids = [doc_id for _, doc_id in expand_paths(root)]
    assert "sub/faq.txt" in ids and "guide.md" in ids
    assert not any(i.startswith(".git") for i in ids)
    assert ids == sorted(ids)


def test_glob_ids_are_relative_to_the_glob_root():
    files = expand_paths(str(CORPUS / "**" / "*.txt"))
    ids = sorted(doc_id for _, doc_id in files)
    assert ids == ["latin1.txt", "plain.txt", "sub/faq.txt"]


def test_missing_path_and_empty_glob_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand_paths(tmp_path / "nope.md")
    with pytest.raises(InputError, match="no files match"):
        expand_paths(str(tmp_path / "*.md"))


def test_looks_like_path():
    assert looks_like_path("docs/intro.md")
    assert looks_like_path("notes.pdf")
    assert looks_like_path("docs/")
    assert not looks_like_path("What is in intro.md?")
    assert not looks_like_path("hello")
    assert not looks_like_path("line one\nline two.md")


def test_text_document_ids_are_content_hashes_and_titles_come_from_text():
    a = text_document("# Kettles\nThey boil water.")
    b = text_document("# Kettles\nThey boil water.")
    c = text_document("Something else entirely, a long first line that goes on and on and on.")
    assert a.doc_id == b.doc_id != c.doc_id
    assert a.title == "Kettles" and a.source == "text"
    assert c.title.endswith("…") and len(c.title) == 61
    assert not c.index_title  # a title cut from the text adds nothing to index


def test_one_bad_file_does_not_stop_the_others():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = [load_file(p, i) for p, i in expand_paths(CORPUS)]
    loaded = sorted(d.doc_id for d in docs if d is not None)
    assert loaded == [
        "brew.ipynb",
        "guide.md",
        "notes.rst",
        "page.html",
        "plain.txt",
        "sub/faq.txt",
        "tool.py",
    ]
    skipped = [str(w.message) for w in caught if issubclass(w.category, LoaderWarning)]
    assert len(skipped) == 2
    assert any("image.bin" in m for m in skipped) and any("latin1.txt" in m for m in skipped)
