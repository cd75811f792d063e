from __future__ import annotations

import json

import pytest

from hpo import spec
from hpo.benchmarks import training


@pytest.mark.slow
def test_bench_runs_the_same_trials_both_ways(write_study, tmp_path):
    study = spec.load(str(write_study()))
    result = training.run_bench(study, None, jobs=1)  # threads: 2 (cores // 1)
    seeds, hpo_way = result.ways
    assert seeds.trials == hpo_way.trials == 4
    assert seeds.images_per_s > 0 and hpo_way.images_per_s > 0
    assert result.speedup == seeds.wall_time / hpo_way.wall_time
    json_path, md_path = training.write(result, tmp_path, "hpo bench --study tiny.toml")
    payload = json.loads(json_path.read_text())
    assert payload["configurations"] == 2 and payload["repeats"] == 2
    assert [w["trials"] for w in payload["ways"]] == [4, 4]
    md = md_path.read_text()
    assert md.startswith("# hpo bench: tiny on digits\n")
    assert "Command: `hpo bench --study tiny.toml`" in md
    assert md.count("| seeds' way") == 1 and md.count("| hpo (1 worker,") == 1
    assert payload["device"] == "cpu" and "2 configurations x 2 seeds x 1 epochs on cpu;" in md
    assert all(w["peak_rss_mb"] > 100 for w in payload["ways"])


@pytest.mark.slow
def test_pruning_bench_compares_pruners_on_the_same_search(write_study, tmp_path):
    from hpo.benchmarks import pruning

    text = (write_study().read_text().replace('sampler = "grid"', 'sampler = "tpe"\nn_trials = 6')
            .replace("repeats = 2", "repeats = 1").replace("epochs = 1", "epochs = 3"))
    path = write_study(text, "tune_tiny.toml")
    results = pruning.run_bench(str(path), [0], [], None, pruners=("none", "median"),
                                threads=1)
    assert [r.pruner for r in results] == ["none", "median"]
    assert all(r.trials == 6 for r in results)
    assert results[0].pruned == 0 and results[0].epochs == 18
    assert (results[1].pruned == 0) == (results[1].epochs == 18)
    rows = pruning.summarize(results)
    assert rows[0]["epochs_vs_none"] == 1.0
    json_path, md_path = pruning.write(results, tmp_path, "hpo bench pruning")
    assert "| none | 1 |" in md_path.read_text()


def test_epochs_to_match_reads_the_trajectory():
    from hpo.benchmarks.pruning import SearchResult, epochs_to_match, match_ratios

    def search(pruner, epochs, trajectory, acc):
        return SearchResult(pruner, 0, 4, 0, epochs, acc, acc, 1.0, trajectory)

    base = search("none", 40, [(10, 90.0), (20, 95.0), (30, 95.0), (40, 97.0)], 97.0)
    fast = search("median", 16, [(10, 96.0), (12, 96.6), (16, 98.0)], 98.0)
    slow = search("hyperband", 30, [(10, 90.0), (30, 96.0)], 96.0)
    assert epochs_to_match(fast, 97.0) == 12  # 96.6 >= 97.0 - 0.5
    assert epochs_to_match(slow, 97.0) is None
    assert match_ratios([base, fast, slow]) == {0: {"none": 1.0, "median": 0.3,
                                                    "hyperband": None}}


@pytest.mark.slow
def test_searches_side_by_side_are_the_searches_run_alone(write_study):
    from hpo.benchmarks import pruning

    text = (write_study().read_text().replace('sampler = "grid"', 'sampler = "tpe"\nn_trials = 5')
            .replace("repeats = 2", "repeats = 1").replace("epochs = 1", "epochs = 2"))
    path = write_study(text, "tune_tiny.toml")
    alone = pruning.run_bench(str(path), [0, 1], [], None, pruners=("none", "median"),
                              threads=1)
    side_by_side = pruning.run_bench(str(path), [0, 1], [], None, pruners=("none", "median"),
                                     threads=1, parallel=2)

    def outcome(r):
        return r.pruner, r.sampler_seed, r.pruned, r.epochs, r.test_acc_of_best, r.trajectory

    assert [outcome(r) for r in side_by_side] == [outcome(r) for r in alone]
    assert [(r.pruner, r.sampler_seed) for r in alone] == [
        ("none", 0), ("median", 0), ("none", 1), ("median", 1)]


def _peak_in_child() -> float:
    from hpo.nn.train import peak_rss_mb

    return peak_rss_mb()


@pytest.mark.slow
def test_peak_memory_is_the_workers_own_not_its_parents():
    import concurrent.futures
    import multiprocessing

    from hpo.nn.train import peak_rss_mb

    ballast = bytearray(400 * 1024 * 1024)  # 400 MB, touched: resident in this process
    ballast[::4096] = b"x" * len(ballast[::4096])
    parent = peak_rss_mb()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        child = pool.submit(_peak_in_child).result()
    del ballast
    # getrusage's ru_maxrss would report at least the parent's size at the fork here.
    assert parent > 400 and child < parent - 300


def test_result_files_are_named_by_device_and_precision():
    def named(device, precision):
        return training.result_stem(training.BenchResult(
            study="dropout_location", dataset="mnist", epochs=2, repeats=3, configurations=4,
            jobs=1, precision=precision, device=device))

    assert named("cpu", "fp32") == "training_dropout_location_mnist"
    assert named("cpu", "bf16") == "training_dropout_location_mnist_bf16"
    assert named("cuda", "fp32") == "training_dropout_location_mnist_cuda"
    assert named("cuda", "bf16") == "training_dropout_location_mnist_cuda_bf16"


def test_bench_on_a_missing_gpu_is_one_line(capsys):
    import pytest
    import torch

    from hpo.cli import main

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    assert main(["bench", "--device", "cuda"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: --device cuda: no CUDA device is visible; use --device cpu or auto\n")
