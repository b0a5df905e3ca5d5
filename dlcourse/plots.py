"""The two plots every chapter needs: training curves and image grids."""

from __future__ import annotations

import math

import numpy as np


def plot_history(history, metrics=None, title=None, axes=None):
    """Plot a Keras ``History`` (or its ``.history`` dict): one panel per metric.

    Each panel shows the training curve and, when present, the ``val_`` curve, against the
    epoch number (1-based, as Keras prints it). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    logs = getattr(history, "history", history)
    if not logs:
        raise ValueError("The history is empty: was the model trained with fit()?")
    if metrics is None:
        metrics = [k for k in logs if not k.startswith("val_") and k != "learning_rate"]
    unknown = [m for m in metrics if m not in logs]
    if unknown:
        raise ValueError(f"Not in the history: {unknown}; it has {sorted(logs)}")
    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2),
                                 squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    for ax, name in zip(axes, metrics):
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], "o-", ms=3, label="training")
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_grid(images, labels=None, ncols=8, size=1.3, cmap="gray", title=None):
    """Show images (N, H, W) or (N, H, W, 3) in a grid, with optional labels as titles.

    Float images are shown as they are if they lie in [0, 1], and rescaled per image
    otherwise (feature maps, filters). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"Expected (N, H, W) or (N, H, W, C) images, got shape {images.shape}")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        if img.dtype.kind == "f" and (img.min() < 0 or img.max() > 1):
            span = img.max() - img.min()
            img = (img - img.min()) / (span if span > 0 else 1.0)
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------- figure checks

CHECK_FIGURES_ENV = "DLCOURSE_CHECK_FIGURES"


def _same_grid_line(ax, axes, column: bool):
    """The axes of the same subplot grid that share ``ax``'s column (or row)."""
    spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    if spec is None:
        return []
    span = spec.colspan if column else spec.rowspan
    out = []
    for other in axes:
        o = other.get_subplotspec() if hasattr(other, "get_subplotspec") else None
        if o is not None and o.get_gridspec() is spec.get_gridspec():
            if (o.colspan if column else o.rowspan) == span:
                out.append(other)
    return out


def figure_problems(fig) -> list[str]:
    """What a reader would miss in a figure: a title, and labels on every plotted axis.

    - The figure needs a title: a ``suptitle`` or a title on one of its axes.
    - An axes drawn with its axis lines on (a plot) needs an x and a y label, its own, the
      figure's ``supxlabel``/``supylabel``, one of an axes it shares that axis with, or, in a
      grid, one of an axes in the same column (x) or row (y).
    - An axes with its axis off (an image panel) needs a title unless the figure has one.
    Colorbars and empty axes are skipped.
    """
    def text(t):
        return bool(t and t.get_text().strip())

    axes = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")
            and ax.has_data()]
    suptitle = text(getattr(fig, "_suptitle", None))
    problems = []
    if axes and not suptitle and not any(ax.get_title() or ax.get_title("left")
                                         or ax.get_title("right") for ax in fig.axes):
        problems.append("the figure has no title (suptitle or an axes title)")
    for i, ax in enumerate(axes):
        name = f"axes {i}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        if not ax.axison:
            continue  # an image panel: the figure title (checked above) names it
        for axis, sup, shared in (("x", "_supxlabel", ax.get_shared_x_axes()),
                                  ("y", "_supylabel", ax.get_shared_y_axes())):
            if getattr(ax, f"get_{axis}label")().strip() or text(getattr(fig, sup, None)):
                continue
            if any(getattr(s, f"get_{axis}label")().strip() for s in shared.get_siblings(ax)):
                continue
            # A grid labels x once per column and y once per row.
            if any(getattr(o, f"get_{axis}label")().strip()
                   for o in _same_grid_line(ax, axes, column=(axis == "x"))):
                continue
            if ax.name == "polar" or (axis == "y" and not getattr(ax, "yaxis").get_visible()):
                continue
            problems.append(f"{name} has no {axis} label")
    return problems


def check_figures_when_shown() -> None:
    """Record a failing claim for every figure drawn without a title or axis labels.

    Turned on by :func:`dlcourse.setup` when ``$DLCOURSE_CHECK_FIGURES`` is set (the book's
    builds set it). Figures that pass print nothing; one that fails prints a line the book's
    claim test reports (``figure-labels:<n>``). Works for every figure a notebook shows,
    because IPython's inline backend renders each through ``canvas.print_figure``.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    if getattr(FigureCanvasBase.print_figure, "_dlcourse_checked", False):
        return
    original = FigureCanvasBase.print_figure
    counter = [0]

    def print_figure(self, *args, **kwargs):
        problems = figure_problems(self.figure)
        if problems:
            from dlcourse.claims import claim

            counter[0] += 1
            claim(f"figure-labels:{counter[0]}", False, {"problems": problems})
        return original(self, *args, **kwargs)

    print_figure._dlcourse_checked = True
    FigureCanvasBase.print_figure = print_figure
