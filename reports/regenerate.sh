#!/bin/sh
# Regenerate every committed report under reports/ (except reports/bench and reports/dashboard).
# Usage: sh reports/regenerate.sh [DATA_DIR] [CIFAR_DIR]
#   DATA_DIR holds MNIST/raw/*-ubyte (default ../shared/data);
#   CIFAR_DIR, when given, runs the CIFAR-10 studies too (~3 h here; the folder is made by
#   `python ../shared/data/get_cifar10.py CIFAR_DIR` if it holds no cifar-10-batches-bin/).
# Stores go to runs/ (not committed). Runtimes on this 2-core machine are in README's table.
set -e
DATA=${1:-../shared/data}
CIFAR=${2:-}
MNIST=sqlite:///runs/mnist.db
mkdir -p runs

# The main job's example: dropout_location on the embedded digits, the shipped settings.
hpo run --study dropout_location --storage sqlite:///runs/digits.db --no-progress
hpo report --study dropout_location --storage sqlite:///runs/digits.db --out reports
# tune is no seed's experiment: TPE + percentile pruning over every knob, on the embedded digits.
hpo run --study tune --storage sqlite:///runs/digits.db --no-progress --jobs 2
hpo report --study tune --storage sqlite:///runs/digits.db --out reports

mnist() {  # mnist STUDY [OPTIONS...]: one study on real MNIST, two one-thread workers, its report
  study=$1; shift
  hpo run --study "$study" --dataset mnist --data-dir "$DATA" --storage "$MNIST" \
    --jobs 2 --no-progress "$@"
  hpo report --study "$study" --storage "$MNIST" --out reports/mnist
}

# R4 family in R4's regime: 10 epochs, lr 1e-3, weight decay 5e-3, batch 100; the optimizer R4
# does not name runs as three readings (sgd, momentum 0.9, adam); 2 seeds to fit the budget.
mnist learning_rate --repeats 2
mnist weight_decay --repeats 2
mnist dropout_location --repeats 2 --epochs 10 --set train.lr=0.001 --set batch_size=100
mnist dropout_rate --repeats 2
mnist cnn_vs_mlp --repeats 2
# R0: Adam, 1 epoch (learning-rate sweep); 25 seeds x 3 epochs (seed variance).
mnist learning_rate_r0
mnist seed_variance
# R3 family: plain SGD, 100 epochs, readings loss_reduction {mean, sum} x training-set size.
mnist batch_size_lr --repeats 2
mnist full_batch
mnist momentum
mnist l2
mnist kernel --repeats 2 --set model.pool=max \
  --set 'space.model.padding={choices=[3], when={"model.kernel_size"=[14]}}'
mnist label_shuffle --repeats 2 --set model.padding=0 --set train_subset=5000 --set val_fraction=0.05
mnist flatness --repeats 2 --set model.padding=0 --set train_subset=5000 --set val_fraction=0.05
# R1/R2 studies on MNIST (stand-ins until the CIFAR-10 reports below exist): short lengths.
for study in activation batch_norm optimizer; do mnist "$study" --epochs 3 --repeats 3; done
mnist early_stopping
mnist depth --epochs 2
mnist extra_fc --epochs 2

# Claims across datasets: the R4 family in R4's regime on digits, MNIST and Fashion-MNIST, in the
# MNIST store (the MNIST runs above are its MNIST column). Fashion-MNIST trains on 10,000 of its
# 50,000 training images (declared in the across report: a 2-seed, 4-study column at full size
# is ~2 h here). Fashion-MNIST: apt-get install dataset-fashion-mnist, then gunzip
# /usr/share/datasets/fashion-mnist/*.gz into FDATA/FashionMNIST/raw/.
FDATA=${FDATA:-$DATA}
R4="--epochs 10 --set train.lr=0.001 --set batch_size=100"  # dropout_location's file is digits-tuned
for study in learning_rate weight_decay dropout_location dropout_rate; do
  regime=""; [ "$study" = dropout_location ] && regime=$R4
  hpo run --study "$study" --storage "$MNIST" --name "${study}_digits" --jobs 2 --no-progress $regime
  hpo run --study "$study" --dataset fashion_mnist --data-dir "$FDATA" --storage "$MNIST" \
    --name "${study}_fashion_mnist" --repeats 2 --set train_subset=10000 --jobs 2 --no-progress $regime
done
hpo report --across-datasets learning_rate,weight_decay,dropout_location,dropout_rate \
  --storage "$MNIST" --out reports

[ -n "$CIFAR" ] || exit 0
# CIFAR-10 studies in the seeds' settings (R1, R2) and transfer on EfficientNet-Lite0 features,
# in the order they were committed (the first ones fit one session of this machine; see
# reports/cifar10/README.md for which have committed reports).
[ -d "$CIFAR/cifar-10-batches-bin" ] || python ../shared/data/get_cifar10.py "$CIFAR"
C=sqlite:///runs/cifar10.db
cifar() { study=$1; shift; hpo run --study "$study" --data-dir "$CIFAR" --storage "$C" \
  --jobs 2 --no-progress "$@"; hpo report --study "$study" --storage "$C" --out reports/cifar10; }
python reports/cifar10_imagefolder.py "$CIFAR" runs/cifar10_cat_dog
hpo run --study transfer --data-dir runs/cifar10_cat_dog --storage "$C" --jobs 2 --no-progress \
  --repeats 2
hpo report --study transfer --storage "$C" --out reports/cifar10
cifar momentum_cifar10
# The second reading of R1's unprinted lr (plain SGD at 1e-3 stays at chance on this network):
hpo run --study momentum_cifar10 --data-dir "$CIFAR" --storage "$C" --jobs 2 --no-progress \
  --set train.lr=0.01 --name momentum_cifar10_lr0.01
hpo report --study momentum_cifar10_lr0.01 --storage "$C" --out reports/cifar10
cifar optimizer_r1_cifar10
# The across table's CIFAR-10 column: R4's family in R4's regime on 5,000 CIFAR-10 training
# images, 2 seeds (declared in the across report: the full 40,000 would be ~8x the time).
for study in learning_rate weight_decay dropout_location dropout_rate; do
  regime=""; [ "$study" = dropout_location ] && regime=$R4
  hpo run --study "$study" --dataset cifar10 --data-dir "$CIFAR" --storage "$MNIST" \
    --name "${study}_cifar10" --repeats 2 --set train_subset=5000 --jobs 2 --no-progress $regime
done
hpo report --across-datasets learning_rate,weight_decay,dropout_location,dropout_rate \
  --storage "$MNIST" --out reports
cifar activation_cifar10
cifar batch_norm_r1_cifar10
cifar depth_cifar10
cifar extra_fc_cifar10 --repeats 2
cifar batch_norm_r2_cifar10 --repeats 2
cifar optimizer_r2_cifar10 --repeats 2
cifar r1_final --repeats 1
