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
