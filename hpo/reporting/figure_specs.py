"""Which figures a report draws, with their captions: (file stem, caption, a thunk that
draws it), so the writer saves them and the caption says what each shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from hpo.reporting import figures, readings
from hpo.reporting.figures import steps as step_figures
from hpo.reporting.tables import ALPHA, Summary, is_two_way_grid
from hpo.reporting.timing import time_basis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (file stem, caption, thunk drawing the figure)
FigureSpec: TypeAlias = "tuple[str, str, Callable[[], Figure]]"


def figure_specs(summary: Summary) -> list[FigureSpec]:
    """(file stem, caption, thunk drawing the figure) for every figure this study gets."""
    name = summary.name
    specs: list[FigureSpec] = []
    if summary.counts["COMPLETE"] == 0:
        return specs
    specs.append((
        "learning_curves",
        "Learning curves: mean over seeds (thick line) and every seed (thin lines, same "
        "colour and dash; no band, which seeds that disagree would stretch over the panel). "
        "Each configuration has its own dash and marker, and lines drawn later are narrower, "
        "so coinciding curves stay visible. A configuration with one run has no thin lines.",
        lambda: figures.plot_curves(figures.curves_data(summary), name),
    ))
    every = summary.study.config.get("train.log_every") or 0
    if every and step_figures.has_steps(summary):
        specs.append((
            "step_curves",
            f"Training loss and accuracy every {every} minibatches (train.log_every): the mean "
            "over seeds (thick) and every seed (thin), each point the window's mean.",
            lambda: step_figures.plot_steps(step_figures.steps_data(summary), name, every),
        ))
    ref = summary.study.reference
    specs.append((
        "test_accuracy",
        "Test accuracy per configuration: mean with its 95% t-interval, every seed as a dot"
        + (", the published value as a red cross." if ref and ref.metric == "test_acc"
           and readings.not_comparable(summary) is None else "."),
        lambda: figures.plot_accuracy(figures.accuracy_data(summary), name,
                                      ref.source if ref else ""),
    ))
    if summary.study.config["analysis"] == "flatness":
        specs.append((
            "flatness",
            "Loss and error along θ(α) = (1−α)·θ₀ + α·θ_final (θ₀ the initial, θ_final the "
            "final weights of each run; batch-norm running statistics interpolated alike): "
            "validation (solid: mean over seeds thick, every seed thin) and training set with "
            "the labels the run was trained on (dashed, mean). Loss on a log scale.",
            lambda: figures.plot_flatness(figures.flatness_data(summary), name),
        ))
    return specs + _grid(summary) + _tuning(summary)


def _grid(summary: Summary) -> list[FigureSpec]:
    """A two-parameter grid's heat maps ([] otherwise)."""
    specs: list[FigureSpec] = []
    if is_two_way_grid(summary):
        specs.append((
            "heatmap",
            "Two-parameter grid: mean test accuracy and mean "
            f"{time_basis(summary).label} per run. {time_basis(summary).note} "
            "Outlined (black) cells are the best cell by mean test accuracy and those not "
            f"significantly different from it in test accuracy (Welch's t-test, p ≥ {ALPHA:g}; "
            "the tables test the study's metric instead; a cell with fewer than "
            f"{summary.min_seeds} runs (min_seeds) is not judged, nor one with a run at chance: "
            "neither is outlined). The accuracy colour scale spans at least "
            f"{figures.MIN_SPAN_POINTS:g} points or {figures.MIN_SPAN_STDS:g} times the largest "
            "seed standard deviation below the best cell, so a spread within noise stays "
            "near one colour.",
            lambda: figures.plot_heatmaps(figures.heatmap_data(summary), summary.name),
        ))
    return specs


def _tuning(summary: Summary) -> list[FigureSpec]:
    """A tuning study's importance and optimisation history ([] for a grid)."""
    name = summary.name
    specs: list[FigureSpec] = []
    if not summary.study.is_grid:
        # Computed now, not when drawn: the caption says whether the two estimators agree.
        importance = figures.importance_data(summary)
        specs.append((
            "importance",
            "Hyperparameter importance of the objective's per-configuration mean: fANOVA "
            f"(random-forest variance decomposition, {figures.FANOVA_TREES} trees of depth <= "
            f"{figures.FANOVA_DEPTH}) and PED-ANOVA (Optuna 5's default: how the top 10% of "
            "configurations differ from all). " + figures.importance_text(importance),
            lambda: figures.plot_importance(importance, name, summary.study.config["metric"]),
        ))
        specs.append((
            "optimization_history",
            "Optimisation history: every complete trial's objective and the best so far.",
            lambda: figures.plot_history(figures.history_data(summary), name,
                                         summary.study.config["metric"]),
        ))
    return specs
