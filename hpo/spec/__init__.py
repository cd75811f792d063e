"""Study files: load, validate, override.

A study file is TOML. Its configuration is flat and addressed by dotted keys (``epochs``,
``model.activation``, ``train.lr``) so that the search space, ``--set`` overrides, report
columns and error messages all speak the same names. Every key has one entry in ``KEYS``
holding its default, its rule and its documentation; nothing else knows the defaults.

The package reads in that order: ``rules`` (allowed values, validators) → ``keys`` (KEYS) →
``model`` (Study, Param, Reference, Claim) → ``validate`` (every rule of a file) → ``load``
(files, ``--set``, stored studies). Everything public is re-exported here: ``spec.load``,
``spec.Study``, ``spec.KEYS``.
"""

from __future__ import annotations

from hpo.errors import SpecError  # noqa: F401  (spec.SpecError)
from hpo.spec.dump import spec_toml  # noqa: F401
from hpo.spec.keys import (  # noqa: F401
    KEYS,
    SECTIONS,
    SPACE_TYPES,
    Key,
)
from hpo.spec.load import (  # noqa: F401
    apply_override,
    find_study_file,
    from_dict,
    load,
    parse_override,
    shipped_studies,
    studies_dir,
    tomllib,
)
from hpo.spec.looks import (  # noqa: F401
    batch_size,
    futile,
    level_at,
    look_alpha,
    planned_looks,
    spent,
)
from hpo.spec.model import (  # noqa: F401
    CHANCE_TOLERANCE,
    CLAIM_FIELDS,
    CLAIM_KINDS,
    CLAIM_METRICS,
    SIMILAR_MARGIN,
    STOP_REASONS,
    THRESHOLD_KINDS,
    Claim,
    Param,
    Reference,
    Study,
    added_choices,
    grid_extends,
    identity_diff,
)
from hpo.spec.rules import (  # noqa: F401
    ACTIVATIONS,
    ANALYSES,
    BATCH_NORMS,
    CNN_ONLY_LOCATIONS,
    DATASETS,
    DROPOUT_LOCATIONS,
    FAMILIES,
    LOSS_REDUCTIONS,
    METRICS,
    MOMENTUM_FORMS,
    OPTIMIZERS,
    POOLS,
    PRECISIONS,
    PRETRAINED,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    THRESHOLD_ON,
    RuleError,
    Validator,
    boolean,
    choice,
    choice_or_list,
    int_list,
    int_or,
    integer,
    key_list,
    optional_choice,
    optional_text,
    real,
    text,
)
from hpo.spec.validate import (  # noqa: F401
    check_config,
    check_value,
    validate,
)

__all__ = [  # the API other packages use; the rest is reached through the submodules
    "ACTIVATIONS", "BATCH_NORMS", "CHANCE_TOLERANCE", "Claim", "DROPOUT_LOCATIONS", "KEYS",
    "METRICS", "OPTIMIZERS", "Param", "Reference", "SCHEDULES", "SIMILAR_MARGIN", "SpecError",
    "Study", "added_choices", "apply_override", "batch_size", "check_config",
    "find_study_file", "from_dict", "futile", "grid_extends", "identity_diff", "level_at", "load",
    "look_alpha", "planned_looks", "shipped_studies", "spent", "tomllib", "validate",
]
