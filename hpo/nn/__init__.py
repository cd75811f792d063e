"""The networks and their training, in plain PyTorch: no Optuna here (tests/test_boundaries.py).

``shapes`` (dataset shapes, ModelConfig, what reaches the first fc layer; torch-free: all that
``hpo.spec`` needs) → ``data`` (datasets as device tensors) → ``layers`` and ``models`` (one
builder for every network) → ``train`` (one training run) → ``flatness`` (the loss along the
line from the initial to the final weights). This package imports none of them eagerly.
"""
