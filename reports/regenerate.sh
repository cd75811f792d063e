#!/bin/sh
# Regenerate every committed report under reports/ (except reports/bench and reports/dashboard).
# Usage: sh reports/regenerate.sh [DATA_DIR]   (DATA_DIR holds MNIST/raw/*-ubyte; default ../shared/data)
# Stores go to runs/ (not committed). On 2 cores: about a minute for digits, 1-2 hours for MNIST.
set -e
DATA=${1:-../shared/data}
mkdir -p runs

# The main job's example: dropout_location on the embedded digits, the shipped settings.
hpo run --study dropout_location --storage sqlite:///runs/digits.db --no-progress
hpo report --study dropout_location --storage sqlite:///runs/digits.db --out reports

# The seeds' experiments on real MNIST: 3 epochs x 3 seeds per configuration. (full_batch and
# early_stopping need their own epoch counts to mean anything; they are not committed yet.)
for study in dropout_location learning_rate weight_decay dropout_rate \
             cnn_vs_mlp momentum l2 kernel activation batch_norm; do
  hpo run --study "$study" --dataset mnist --data-dir "$DATA" --epochs 3 --repeats 3 \
    --storage sqlite:///runs/mnist.db --no-progress
done
hpo report --all --storage sqlite:///runs/mnist.db --out reports/mnist
