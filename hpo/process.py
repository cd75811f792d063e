"""Process set-up shared by the command line and the worker processes it starts."""

from __future__ import annotations


def quiet_libraries(verbose: bool) -> None:
    """Quiet Optuna's logger and its experimental-feature warnings (unless ``verbose``):
    process set-up for `hpo` itself and for every worker process it spawns."""
    import logging
    import warnings

    if verbose:
        return
    # Optuna flags heartbeats, metric names and more as experimental on every call: noise here.
    warnings.filterwarnings("ignore", message=r"(?s).*experimental")
    import optuna  # its import resets its logger, so quiet it afterwards

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
