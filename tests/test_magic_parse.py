"""ragnb._magic_parse.interpolate: {name} in a question replaced by user variables."""

from __future__ import annotations

from ragnb._magic_parse import interpolate


def test_interpolate_replaces_known_names_and_keeps_unknown_ones():
    ns = {"part": "Mast", "n": 3, "_hidden": "no"}
    assert interpolate("Is the {part} rated {n}?", ns) == "Is the Mast rated 3?"
    assert interpolate("{missing} and {_hidden} stay", ns) == "{missing} and {_hidden} stay"
    assert interpolate("{{part}} {part.x} {0}", ns) == "{part} {part.x} {0}"
