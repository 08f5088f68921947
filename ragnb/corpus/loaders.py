"""Read files into documents: text split into sections, each with its heading path.

    load_file("docs/install.md")
    -> Document(doc_id="install.md", source="docs/install.md", title="Install", sections=[
           Section(("Install",), "Intro ..."), Section(("Install", "Linux"), "apt ...")])

One loader per format, all returning the same `Document`. A file that cannot be read (unknown
extension, binary content, a broken PDF, a missing optional library) is skipped with a
`LoaderWarning` that names it: one bad file never stops a folder from loading.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from ragnb.errors import INSTALL, InputError

__all__ = [
    "LOADERS",
    "Document",
    "LoaderWarning",
    "Section",
    "expand_paths",
    "load_file",
    "looks_like_path",
    "names_files",
    "parse_html",
    "parse_ipynb",
    "parse_markdown",
    "parse_python",
    "parse_rst",
    "text_document",
]

# folders never worth indexing when a whole tree is added
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", "node_modules", ".venv"}


class LoaderWarning(UserWarning):
    """A file was skipped (unknown type, binary, unreadable, optional reader missing)."""


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, e.g. ``(("Install", "Linux"), "Run apt ...")``."""

    heading: tuple[str, ...]
    text: str


@dataclass
class Document:
    """One document before chunking: its id, origin, title, sections and user metadata.

    `index_title` says whether the title is worth indexing with each chunk (False when it was
    only cut from the text's own first line).
    """

    doc_id: str
    source: str
    title: str
    sections: list[Section]
    metadata: dict = field(default_factory=dict)
    index_title: bool = True

    @property
    def text(self) -> str:
        """All sections' text, joined by blank lines."""
        return "\n\n".join(s.text for s in self.sections)


# ---------------------------------------------------------------- markdown / plain text

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")


def _push(path: list[str], level: int, title: str) -> list[str]:
    """Heading path after a heading of `level` (1-based): ``(["A", "B"], 2, "C") -> ["A", "C"]``."""
    return path[: level - 1] + [""] * max(0, level - 1 - len(path)) + [title]


def _sections(parts: list[tuple[list[str], list[str]]]) -> list[Section]:
    """Join collected (heading path, lines) pairs into sections, dropping empty ones."""
    out = []
    for path, lines in parts:
        text = "\n".join(lines).strip()
        if text:
            out.append(Section(tuple(h for h in path if h), text))
    return out


def parse_markdown(text: str) -> list[Section]:
    """Split Markdown into sections by ATX (``# A``) and setext (``A\\n===``) headings.

    Headings inside fenced code blocks are code, not headings.

    >>> parse_markdown("# A\\nintro\\n## B\\nbody")
    [Section(heading=('A',), text='intro'), Section(heading=('A', 'B'), text='body')]
    """
    path: list[str] = []
    parts: list[tuple[list[str], list[str]]] = [([], [])]
    in_fence = None
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and (in_fence is None or fence.group(1) == in_fence):
            in_fence = None if in_fence else fence.group(1)
            parts[-1][1].append(line)
            continue
        if in_fence is None:
            atx = _ATX.match(line)
            lines = parts[-1][1]
            setext = _SETEXT.match(line)
            if atx:
                path = _push(path, len(atx.group(1)), atx.group(2).strip())
                parts.append((path, []))
                continue
            if setext and lines and lines[-1].strip() and _is_setext_title(lines):
                title = lines.pop().strip()
                path = _push(path, 1 if setext.group(1)[0] == "=" else 2, title)
                parts.append((path, []))
                continue
        parts[-1][1].append(line)
    return _sections(parts)


def _is_setext_title(lines: list[str]) -> bool:
    """A setext underline only makes a heading of a single-line paragraph."""
    return len(lines) == 1 or not lines[-2].strip()


# ---------------------------------------------------------------- reStructuredText

_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def parse_rst(text: str) -> list[Section]:
    """Split reStructuredText into sections. Heading levels follow the order in which
    adornment styles first appear (the rst rule); an overline makes a distinct style.

    >>> parse_rst("Title\\n=====\\nintro\\n\\nPart\\n----\\nbody")
    [Section(heading=('Title',), text='intro'), Section(heading=('Title', 'Part'), text='body')]
    """
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    path: list[str] = []
    parts: list[tuple[list[str], list[str]]] = [([], [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        after = lines[i + 2] if i + 2 < len(lines) else ""
        over = _RST_ADORN.match(line)
        title, style, step = None, None, 1
        if over and nxt.strip() and _RST_ADORN.match(after) and after.strip()[0] == line.strip()[0]:
            title, style, step = nxt.strip(), (line.strip()[0], True), 3
        elif (
            line.strip()
            and not over
            and _RST_ADORN.match(nxt)
            and len(nxt.rstrip()) >= len(line.rstrip())
            and (i == 0 or not lines[i - 1].strip())
        ):
            title, style, step = line.strip(), (nxt.strip()[0], False), 2
        if title is not None:
            if style not in styles:
                styles.append(style)
            path = _push(path, styles.index(style) + 1, title)
            parts.append((path, []))
        else:
            parts[-1][1].append(line)
        i += step
    return _sections(parts)


# ---------------------------------------------------------------- HTML (text only)


class _HTMLText(HTMLParser):
    """Collects visible text by heading; drops script, style and other non-text elements."""

    _DROP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {
        "p",
        "div",
        "li",
        "tr",
        "br",
        "pre",
        "section",
        "article",
        "blockquote",
        "table",
        "ul",
        "ol",
        "dd",
        "dt",
        "hr",
        "main",
        "header",
        "footer",
        "nav",
        "aside",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.path: list[str] = []
        self.parts: list[tuple[list[str], list[str]]] = [([], [])]
        self.buf: list[str] = []
        self.drop = 0
        self.heading_level = 0
        self.heading_buf: list[str] = []
        self.title = ""
        self.in_title = False

    def _flush(self):
        text = " ".join("".join(self.buf).split())
        if text:
            self.parts[-1][1].append(text)
        self.buf = []

    def _end_heading(self):
        title = " ".join("".join(self.heading_buf).split())
        if title:
            self.path = _push(self.path, self.heading_level, title)
            self.parts.append((self.path, []))
        self.heading_level = 0

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag == "body":
            self.drop = 0  # an unclosed <head> (legal HTML) must not hide the page
        elif tag in self._DROP:
            self.drop += 1
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            if self.heading_level:  # a heading left open ends where the next block starts
                self._end_heading()
            self._flush()
            if tag[0] == "h" and tag[1:].isdigit():
                self.heading_level = int(tag[1])
                self.heading_buf = []

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in self._DROP:
            self.drop = max(0, self.drop - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading_level:
            self._end_heading()
        elif tag in self._BLOCK:
            self._flush()

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if self.drop:
            return
        (self.heading_buf if self.heading_level else self.buf).append(data)


def parse_html(text: str) -> tuple[str, list[Section]]:
    """Visible text of an HTML page by heading, and its ``<title>``.

    >>> parse_html("<h1>A</h1><p>x <b>y</b></p><script>z()</script>")
    ('', [Section(heading=('A',), text='x y')])
    """
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    parser._flush()
    sections = [
        Section(tuple(h for h in path if h), "\n\n".join(lines))
        for path, lines in parser.parts
        if lines
    ]
    return " ".join(parser.title.split()), sections


# ---------------------------------------------------------------- notebooks and Python


def parse_ipynb(text: str) -> list[Section]:
    """Markdown and code cells of a notebook (outputs dropped); markdown headings make the path.

    Code cells are kept as fenced blocks under the heading they follow.
    """
    nb = json.loads(text)
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook (no 'cells' list)")
    info = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    info = info.get("language_info") if isinstance(info.get("language_info"), dict) else {}
    lang = info.get("name") if isinstance(info.get("name"), str) else "python"
    pieces = []
    for number, cell in enumerate(cells, start=1):
        src = cell.get("source", "") if isinstance(cell, dict) else None
        if isinstance(src, list) and all(isinstance(line, str) for line in src):
            src = "".join(src)
        if not isinstance(src, str):
            raise ValueError(f"cell {number} is not a notebook cell (an object with a text source)")
        if not src.strip():
            continue
        if cell.get("cell_type") == "markdown":
            pieces.append(src)
        elif cell.get("cell_type") == "code":
            pieces.append(f"```{lang}\n{src.rstrip()}\n```")
    return parse_markdown("\n\n".join(pieces))


def parse_python(text: str) -> list[Section]:
    """A Python file as sections: the module header, then one per top-level def or class
    (heading ``def name`` / ``class Name``). A file that does not parse is one section.

    >>> [s.heading for s in parse_python("import os\\n\\ndef f():\\n    pass\\n")]
    [(), ('def f',)]
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # nesting too deep for ast
        return _sections([([], text.splitlines())])
    lines = text.splitlines()
    starts = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            starts.append((first, f"{kind} {node.name}"))
    parts = [([], lines[: starts[0][0]] if starts else lines)]
    for (start, name), nxt in zip(starts, [s for s, _ in starts[1:]] + [len(lines)], strict=True):
        parts.append(([name], lines[start:nxt]))
    return _sections(parts)


# ---------------------------------------------------------------- PDF (optional)


def _read_pdf(path: Path) -> tuple[str, list[Section]]:
    """Pages of a PDF as sections headed ``page N``; title from the PDF metadata if set."""
    try:
        import pypdf
    except ImportError:
        raise _Skip(f"needs pypdf: run `{INSTALL['pdf']}`") from None
    try:
        reader = pypdf.PdfReader(str(path))
        title = ""
        try:
            title = str((reader.metadata or {}).get("/Title") or "").strip()
        except Exception:  # broken metadata is not worth skipping the text for
            title = ""
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section((f"page {number}",), text))
    except Exception as exc:  # pypdf raises many types on damaged files
        raise _Skip(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    return title, sections


# ---------------------------------------------------------------- dispatch


class _Skip(Exception):
    """Internal: this file is skipped, with the reason given."""


def _is_utf8(text: str) -> bool:
    """False for a string with a lone surrogate (an undecodable file name byte), which Parquet,
    hashing and every later step would refuse."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise _Skip("binary content")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Skip("not UTF-8 text") from None


def _text_loader(parse: Callable[[str], list[Section]]):
    def load(path: Path) -> tuple[str, list[Section]]:
        return "", parse(_read_text(path))

    return load


def _html_loader(path: Path) -> tuple[str, list[Section]]:
    return parse_html(_read_text(path))


def _plain(text: str) -> list[Section]:
    return _sections([([], text.splitlines())])


#: extension -> loader returning (title or "", sections)
LOADERS: dict[str, Callable[[Path], tuple[str, list[Section]]]] = {
    ".md": _text_loader(parse_markdown),
    ".markdown": _text_loader(parse_markdown),
    ".txt": _text_loader(_plain),
    ".rst": _text_loader(parse_rst),
    ".html": _html_loader,
    ".htm": _html_loader,
    ".ipynb": _text_loader(parse_ipynb),
    ".py": _text_loader(parse_python),
    ".pdf": _read_pdf,
}


def _title(sections: list[Section], fallback: str) -> str:
    for s in sections:
        if s.heading and not s.heading[0].startswith(("page ", "def ", "class ")):
            return s.heading[0]
    return fallback


def load_file(
    path: str | Path, doc_id: str | None = None, metadata: dict | None = None
) -> Document | None:
    """Read one file into a Document, or warn (LoaderWarning naming the file) and return None.

    `doc_id` defaults to the file name; the title is the HTML ``<title>`` or PDF title when set,
    else the first heading, else the file stem.
    """
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    try:
        if not _is_utf8(str(path)) or (doc_id is not None and not _is_utf8(doc_id)):
            raise _Skip("its name is not valid UTF-8 text (rename the file)")
        if loader is None:
            raise _Skip(
                f"unknown file type {path.suffix or '(no extension)'!r}; "
                f"readable types: {', '.join(sorted(LOADERS))}"
            )
        title, sections = loader(path)
    except _Skip as why:
        warnings.warn(f"skipped {path}: {why}", LoaderWarning, stacklevel=3)
        return None
    except Exception as exc:  # the contract: one bad file never stops a folder (MemoryError too)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        warnings.warn(f"skipped {path}: {type(exc).__name__}: {first}", LoaderWarning, stacklevel=3)
        return None
    if not sections:
        warnings.warn(f"skipped {path}: no text found", LoaderWarning, stacklevel=3)
        return None
    title = title or _title(sections, "") or path.stem  # <title>/PDF title, heading, stem
    return Document(doc_id or path.name, str(path), title, sections, dict(metadata or {}))


def text_document(
    text: str,
    doc_id: str | None = None,
    source: str = "text",
    title: str | None = None,
    metadata: dict | None = None,
) -> Document:
    """A Document from a raw string (parsed as Markdown, so headings still make sections).

    The default id is a content hash, so adding the same text twice names the same document.

    >>> text_document("# Hi\\nthere").doc_id
    'text-bb096e6afbb8'
    """
    sections = parse_markdown(text)
    if doc_id is None:
        doc_id = "text-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    explicit = title is not None
    if title is None:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        title = _title(sections, "") or (first[:60] + ("…" if len(first) > 60 else ""))
    return Document(str(doc_id), source, title, sections, dict(metadata or {}), explicit)


_GLOB_CHARS = set("*?[")


def looks_like_path(text: str) -> bool:
    """True for a string that was probably meant as a path: one line, no spaces, and a known
    extension, a path separator at the end, or a ``*`` wildcard.

    >>> looks_like_path("docs/intro.md"), looks_like_path("How do I install it?")
    (True, False)
    """
    if "\n" in text or " " in text.strip() or not text.strip():
        return False
    return Path(text).suffix.lower() in LOADERS or text.endswith(("/", "\\")) or "*" in text


def names_files(text: str) -> bool:
    """True when a string names files: it exists, or holds glob characters that match something.
    An empty string names nothing (``Path("")`` would be the working directory)."""
    if not text.strip() or "\n" in text or len(text) > 4096:
        return False
    try:
        if Path(text).expanduser().exists():
            return True
    except OSError:
        return False
    if _GLOB_CHARS & set(text):
        return bool(glob.glob(os.path.expanduser(text), recursive=True))
    return False


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p in _SKIP_DIRS or p.startswith(".") for p in rel):
            continue
        if path.is_file():
            yield path


def expand_paths(spec: str | Path) -> list[tuple[Path, str]]:
    """Files named by a path, folder or glob, each with its doc id (path relative to the root
    that was added, with forward slashes). Raises InputError when nothing matches.

    >>> expand_paths("README.md")  # doctest: +SKIP
    [(PosixPath('README.md'), 'README.md')]
    """
    text = str(spec)
    if not text.strip():  # Path("") is ".": an empty string must not mean the working directory
        raise InputError("the path is empty: pass a file, folder or glob, e.g. 'docs/'")
    path = Path(text).expanduser()
    if path.is_dir():
        return [(p, p.relative_to(path).as_posix()) for p in _walk(path)]
    if path.is_file():
        return [(path, path.name)]
    if _GLOB_CHARS & set(text):
        matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
        files = [m for m in matches if m.is_file()]
        if files:
            root = _glob_root(text)
            return [(f, _relative(f, root)) for f in files]
        raise InputError(f"no files match {text!r}: check the pattern (use ** for subfolders)")
    raise InputError(
        f"no such file or folder: {text!r}; pass an existing path (to index this string as "
        "text, give it an id=)"
    )


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard: ``docs/**/*.md -> docs``."""
    parts = []
    for part in Path(pattern).expanduser().parts:
        if _GLOB_CHARS & set(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
