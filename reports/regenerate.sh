#!/bin/sh
# Regenerate every committed report under reports/ (except reports/bench and reports/dashboard).
# Usage: sh reports/regenerate.sh [DATA_DIR]   (DATA_DIR holds MNIST/raw/*-ubyte; default ../shared/data)
# Stores go to runs/ (not committed). Runtimes on this 2-core machine are in reports/mnist/README.md.
set -e
DATA=${1:-../shared/data}
MNIST=sqlite:///runs/mnist.db
mkdir -p runs

# The main job's example: dropout_location on the embedded digits, the shipped settings.
hpo run --study dropout_location --storage sqlite:///runs/digits.db --no-progress
hpo report --study dropout_location --storage sqlite:///runs/digits.db --out reports

mnist() {  # mnist STUDY [OPTIONS...]: one study on real MNIST, two one-thread workers
  study=$1; shift
  hpo run --study "$study" --dataset mnist --data-dir "$DATA" --storage "$MNIST" \
    --jobs 2 --no-progress "$@"
}

# The seeds' one-knob comparisons: 3 epochs x 3 seeds per configuration.
for study in dropout_location learning_rate weight_decay dropout_rate \
             cnn_vs_mlp momentum l2 kernel activation batch_norm optimizer; do
  mnist "$study" --epochs 3 --repeats 3
done
# Studies whose point needs their own training length (see each report's setup line).
mnist seed_variance                          # 25 seeds x 3 epochs, as R0
mnist batch_size_lr                          # 10 epochs (R3: 100)
mnist full_batch --epochs 100                # 100 epochs, as R3: full-batch GD takes one step per epoch
mnist early_stopping                         # 20 epochs at most, as R1
mnist label_shuffle --set train_subset=5000 --epochs 50   # memorising 4,000 images takes ~50 epochs
mnist flatness --set train_subset=5000 --epochs 50
mnist depth --epochs 2                       # 45 trials; the deep nets are the slow ones
mnist extra_fc --epochs 2                    # R2's 512-unit net: the slowest trials of the catalogue
# transfer: ants/bees and AlexNet's ImageNet weights cannot be downloaded here. Stand-in: a
# two-class image folder cut from MNIST (4 vs 9, the tutorial's sizes) and random weights.
python reports/mnist_imagefolder.py "$DATA" runs/mnist_4_9
hpo run --study transfer --data-dir runs/mnist_4_9 --set model.pretrained=none --epochs 10 \
  --storage "$MNIST" --jobs 2 --no-progress
hpo report --all --storage "$MNIST" --out reports/mnist

# tune is no seed's experiment: TPE + percentile pruning over every knob, on the embedded digits.
hpo run --study tune --storage sqlite:///runs/digits.db --no-progress --jobs 2
hpo report --study tune --storage sqlite:///runs/digits.db --out reports
