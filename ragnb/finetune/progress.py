"""Training progress as callbacks ``callback(step, steps, loss)``: a tqdm bar and a live loss
plot (an inline SVG refreshed in place in a notebook). Trainers know nothing about frontends."""

from __future__ import annotations

from ragnb._html import esc


def loss_svg(losses: list[float], steps: int, width: int = 360, height: int = 140) -> str:
    """A small line chart of `losses` (x: step 1..steps, y: loss) as an SVG string.

    >>> loss_svg([2.0, 1.0], steps=4).startswith("<svg")
    True
    """
    pad = 30
    top = max(losses) if losses else 1.0
    top = top if top > 0 else 1.0
    w, h = width - 2 * pad, height - 2 * pad

    def xy(i: int, loss: float) -> str:
        x = pad + w * (i / max(1, steps - 1))
        y = pad + h * (1 - max(0.0, loss) / top)
        return f"{x:.1f},{y:.1f}"

    points = " ".join(xy(i, loss) for i, loss in enumerate(losses))
    last = f"step {len(losses)}/{steps}, loss {losses[-1]:.3f}" if losses else "starting"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'style="font:11px sans-serif">'
        f'<rect x="{pad}" y="{pad}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>'
        f'<text x="{pad}" y="{pad - 8}">{esc(last)}</text>'
        f'<text x="2" y="{pad + 4}">{top:.2f}</text><text x="2" y="{pad + h}">0</text>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>'
        "</svg>"
    )


class LossPlot:
    """Live loss plot for a notebook: one display area updated every `every` steps."""

    def __init__(self, every: int = 2):
        self.every = every
        self.losses: list[float] = []
        self._handle = None

    def __call__(self, step: int, steps: int, loss: float) -> None:
        from IPython.display import HTML, display

        self.losses.append(loss)
        if step % self.every and step != steps:
            return
        html = HTML(loss_svg(self.losses, steps))
        if self._handle is None:
            self._handle = display(html, display_id=True)
        else:
            self._handle.update(html)


class ProgressBar:
    """A tqdm.auto bar (a widget in Jupyter, text elsewhere) with the latest loss."""

    def __init__(self, desc: str = "fine-tuning"):
        self.desc = desc
        self._bar = None

    def __call__(self, step: int, steps: int, loss: float) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=steps, initial=step - 1, desc=self.desc, unit="step")
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{loss:.3f}")
        if step >= steps:
            self._bar.close()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a display can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
