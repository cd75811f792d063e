"""Figures of a report. Each is computed as plain data first (``*_data`` -> DataFrame or
dataclass, tested for its numbers) and drawn second (``plot_*`` -> matplotlib Figure).

``common`` (labels, which configurations are drawn, save) → ``curves`` (learning curves) →
``accuracy`` (per configuration) → ``heatmaps`` (two-parameter grids) → ``importance``
(parameter importance and optimisation history, tuning studies) → ``flatness``.
"""

from __future__ import annotations

from hpo.reporting.figures.accuracy import (  # noqa: F401
    AccuracyData,
    accuracy_data,
    plot_accuracy,
    strip_key,
)
from hpo.reporting.figures.common import (  # noqa: F401
    CURVE_METRICS,
    DPI,
    LABELS,
    MAX_BARS,
    MAX_CURVES,
    complete_with_labels,
    palette,
    save,
    shown_configs,
    tick,
    unit_label,
)
from hpo.reporting.figures.curves import (  # noqa: F401
    DASHES,
    MARKERS,
    NARROWEST,
    WIDEST,
    CurvesData,
    LineStyle,
    curves_data,
    line_styles,
    plot_curves,
)
from hpo.reporting.figures.flatness import (  # noqa: F401
    FLATNESS_METRICS,
    FlatnessData,
    flatness_data,
    plot_flatness,
)
from hpo.reporting.figures.heatmaps import (  # noqa: F401
    MIN_SPAN_POINTS,
    MIN_SPAN_STDS,
    HeatmapData,
    colour_range,
    heatmap_data,
    plot_heatmaps,
)
from hpo.reporting.figures.importance import (  # noqa: F401
    AGREEMENT_RHO,
    BOOTSTRAP,
    BOOTSTRAP_SEED,
    EVALUATORS,
    FANOVA_BOOTSTRAP_MAX,
    FANOVA_DEPTH,
    FANOVA_TREES,
    ImportanceData,
    history_data,
    importance_agreement,
    importance_data,
    importance_study,
    importance_text,
    importance_trials,
    plot_history,
    plot_importance,
)

__all__ = [  # the API other packages use; the rest is reached through the submodules
    "CURVE_METRICS", "ImportanceData", "accuracy_data", "colour_range", "curves_data",
    "flatness_data", "heatmap_data", "history_data", "importance_agreement", "importance_data",
    "importance_text", "line_styles", "plot_accuracy", "plot_curves", "plot_flatness",
    "plot_heatmaps", "plot_history", "plot_importance", "save",
]
