"""ragnb.filters.parse_where: text -> a polars expression, checked, never run."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ragnb.errors import InputError
from ragnb.filters import parse_where

CHUNKS = pl.DataFrame(
    {
        "chunk_id": ["a#0", "b#0", "c#0", "d#0"],
        "title": ["Install", "Usage", "FAQ", None],
        "year": [2019, 2021, 2023, 2024],
        "lang": ["en", "de", "en", "fr"],
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("year > 2020", pl.col("year") > 2020),
        (
            'pl.col("year") >= 2021 and pl.col("lang") == "en"',
            (pl.col("year") >= 2021) & (pl.col("lang") == "en"),
        ),
        ("2020 < year <= 2023", (pl.col("year") > 2020) & (pl.col("year") <= 2023)),
        ('col("lang").is_in(["en", "fr"])', pl.col("lang").is_in(["en", "fr"])),
        (
            'pl.col("title").str.to_lowercase().str.contains("ins")',
            pl.col("title").str.to_lowercase().str.contains("ins"),
        ),
        ("not year > 2020 or lang == 'fr'", ~(pl.col("year") > 2020) | (pl.col("lang") == "fr")),
        ("title.is_null()", pl.col("title").is_null()),
        ("(year - 2000) * 2 > 44", (pl.col("year") - 2000) * 2 > 44),
    ],
)
def test_parse_where_filters_like_the_polars_expression(text, expected):
    got = CHUNKS.filter(parse_where(text, CHUNKS.columns))
    assert_frame_equal(got, CHUNKS.filter(expected))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("year >", "not valid Python"),
        ('pl.col("nope") > 1', "unknown column 'nope'"),
        ("nope == 1", "not a column"),
        ('__import__("os").system("echo hacked")', "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("year.__class__", "not allowed"),
        ('pl.col("year").map_elements(print)', "'map_elements' is not allowed"),
        ('pl.read_csv("x.csv")', "not allowed"),
        ("lambda: 1", "not allowed"),
        ("1 > 2", "compares two constants"),
        ("2024", "constant"),
        ('lang in ["en"]', "is_in"),
    ],
)
def test_parse_where_refuses_with_one_line(text, says):
    with pytest.raises(InputError) as info:
        parse_where(text, CHUNKS.columns)
    message = str(info.value)
    assert says in message
    assert "\n" not in message


def test_parse_where_never_runs_code(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(InputError):
        parse_where(f'__import__("pathlib").Path({str(marker)!r}).touch()', CHUNKS.columns)
    assert not marker.exists()
