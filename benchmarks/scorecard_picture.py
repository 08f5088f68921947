"""The scorecard as a picture, from a real run: HTML and light/dark screenshots for the docs.

    nice .venv/bin/python benchmarks/scorecard_picture.py           # run, save, screenshot
    nice .venv/bin/python benchmarks/scorecard_picture.py --shots   # screenshot the saved HTML

Runs a small scorecard like notebook 03's (Skymere manual; 4 training pairs, their paraphrases,
2 held-out, 2 new-fact and 2 absent questions; a LoRA fine-tune of 12 steps on the pairs and the
new facts), sized to finish on a busy 2-core machine, then writes

    docs/images/scorecard.html          the card's HTML as a notebook shows it
    docs/images/scorecard-light.png     headless Debian chromium, JupyterLab's light theme
    docs/images/scorecard-dark.png      the same, JupyterLab's dark theme
    benchmarks/results/scorecard.json   the measurements behind the picture

The theme CSS is JupyterLab's own (from this venv), inlined, so the screenshots show what the
JupyterLab CSS variables the card uses resolve to in each theme.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAGNB_HOME", str(ROOT / ".ragnb-cache"))  # shared with the test suite
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from _common import machine, write_result  # noqa: E402

IMAGES = ROOT / "docs" / "images"
THEMES = Path(sys.prefix) / "share" / "jupyter" / "lab" / "themes" / "@jupyterlab"
CHROMIUM = Path("/usr/bin/chromium")


def run_scorecard():
    """The scorecard of notebook 03, measured now."""
    import polars as pl

    import ragnb
    from ragnb import datasets

    kb = ragnb.KnowledgeBase()
    kb.add(datasets.manual_dir())
    train = datasets.questions("train").gather_every(6)
    paraphrase = datasets.questions("paraphrase").gather_every(6)
    heldout = datasets.questions("heldout").head(2)
    new_facts = datasets.questions("new_facts").head(2)
    absent = datasets.questions("absent").head(2)
    pairs = pl.concat([train, new_facts]).select("question", pl.col("response").alias("answer"))
    ft = ragnb.finetune.train(
        pairs, steps=12, learning_rate=1.5e-3, max_length=128, progress=False, plot=False
    )
    return ragnb.scorecard(
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


def page(card_html: str, theme: str) -> str:
    """A standalone page: JupyterLab's theme CSS, then the card on the theme's background."""
    css = (THEMES / f"theme-{theme}-extension" / "index.css").read_text(encoding="utf-8")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        f"{css}\nbody{{margin:0;padding:16px;background:var(--jp-layout-color0);"
        "font-family:var(--jp-ui-font-family)}}</style></head>"
        f"<body>{card_html}</body></html>"
    )


def screenshots(card_html: str) -> list[Path]:
    """Light and dark PNGs of the card, by headless chromium (no network, no profile)."""
    if not CHROMIUM.exists():
        raise SystemExit("chromium is missing: run bash .ci/install-chromium")
    out = []
    for theme in ("light", "dark"):
        html = IMAGES / f"scorecard-{theme}.html"
        png = IMAGES / f"scorecard-{theme}.png"
        html.write_text(page(card_html, theme), encoding="utf-8")
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={png}",
                "--window-size=820,760",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        html.unlink()
        out.append(png)
        print(f"wrote {png}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="1: one torch thread")
    parser.add_argument("--shots", action="store_true", help="only screenshot the saved HTML")
    args = parser.parse_args()
    if args.threads == 1:
        os.environ["RAGNB_TRAIN_THREADS"] = "1"  # the torch engine reads it
    IMAGES.mkdir(parents=True, exist_ok=True)
    saved = IMAGES / "scorecard.html"
    if not args.shots:
        card = run_scorecard()
        print(repr(card))
        saved.write_text(card._repr_html_(), encoding="utf-8")
        m = card.measurements
        write_result(
            "scorecard",
            {
                "machine": machine(),
                "rag_model": m.rag_model,
                "ft_model": m.ft_model,
                "table": card.df.to_dicts(),
                "accuracy": {
                    f"{arm}/{split}": m.accuracy(arm, split)
                    for arm in m.arms
                    for split in ("train", "paraphrase", "heldout", "new_facts", "new_before")
                },
                "index_seconds": m.index.seconds,
                "update_seconds": m.update.seconds if m.update else None,
                "train_seconds": m.training.seconds,
                "total_seconds": m.total_seconds,
                "answers": m.answers.to_dicts(),
            },
            repr(card),
        )
    screenshots(saved.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
