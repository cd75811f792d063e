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
    # Each way records its runs, and they pair by configuration and seed.
    assert [sorted((r["config"], r["seed"]) for r in w["runs"]) for w in payload["ways"]] == [
        sorted((f"dropout_location={c}", s) for c in ("none", "before_fc")
               for s in (0, 1))] * 2
    assert result.comparison().pairs == 4 and "Paired by configuration and seed: 4 pairs" in md


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

    # 3 trials of 2 epochs a search (each trial's report per epoch reaches the pruner): ~40% of
    # the cost of 5, each search still a sequence of its own sampler's picks.
    text = (write_study().read_text().replace('sampler = "grid"', 'sampler = "tpe"\nn_trials = 3')
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


# The paired accuracy comparison, on synthetic runs whose answer is known: 4 configurations x
# 3 seeds, the seeds' way at these accuracies, hpo at them plus a planted difference per pair.
CONFIGS = ("dropout_location=none", "dropout_location=before_pool",
           "dropout_location=after_pool", "dropout_location=after_fc")
BASE = (96.0, 96.5, 95.8, 96.2, 96.9, 96.1, 95.5, 96.3, 96.7, 96.0, 96.4, 96.6)
COLLAPSED = {"test_acc": 11.35, "train_acc": 10.4, "train_loss": 2.301}  # guessing's


def synthetic_runs(shift=(0.0,) * 12, collapsed=()):
    runs = []
    for i, (config, seed) in enumerate((c, s) for c in CONFIGS for s in (0, 1, 2)):
        run = {"config": config, "seed": seed, "test_acc": BASE[i] + shift[i],
               "train_acc": 97.5, "train_loss": 0.08}
        runs.append(run | (COLLAPSED if (config, seed) in collapsed else {}))
    return runs


def test_a_planted_collapse_is_counted_apart_and_left_out_of_the_difference():
    from hpo.benchmarks import paired

    found = paired.compare(synthetic_runs(),
                           synthetic_runs(collapsed={("dropout_location=after_pool", 1)}),
                           "mnist")
    assert (found.pairs, found.collapsed_a, found.collapsed_b, found.clean) == (12, 0, 1, 11)
    assert found.only_b == [("dropout_location=after_pool", 1)] and found.only_a == []
    assert paired.lines(found) == [
        "Paired by configuration and seed: 12 pairs; collapsed (ended at chance): "
        "seeds' way 0, hpo 1.",
        "Only hpo collapsed in: dropout_location=after_pool seed 1.",
        "Test accuracy, hpo − seeds' way, over the 11 pairs where neither collapsed: "
        "+0.00 points (95% interval [+0.00, +0.00]; equivalence margin ±1).",
        "Verdict: equal within noise.",
    ]
    # Over the means the collapse is a -7.1-point difference; paired, it is counted apart.
    both = paired.compare(synthetic_runs(collapsed={("dropout_location=none", 2)}),
                          synthetic_runs(collapsed={("dropout_location=none", 2)}), "mnist")
    assert (both.both, both.only_a, both.only_b, both.clean) == (1, [], [], 11)
    assert paired.lines(both)[0] == ("Paired by configuration and seed: 12 pairs; collapsed "
                                     "(ended at chance): seeds' way 1, hpo 1, both in 1 pairs.")


def test_the_loss_at_guessing_marks_a_collapse_too():
    from hpo.benchmarks import paired

    stuck = [run | {"train_acc": 20.0, "train_loss": 2.25} for run in synthetic_runs()[:1]]
    found = paired.compare(synthetic_runs()[:1], stuck, "mnist")
    assert found.only_b == [("dropout_location=none", 0)]
    assert paired.compare(synthetic_runs()[:1], stuck, "mnist", "sum").only_b == []
    # At 30%, more than three at_chance tolerances above guessing, the run learned something
    # whatever its loss (overconfident logits).
    learned = [run | {"train_acc": 30.0, "train_loss": 2.25} for run in synthetic_runs()[:1]]
    assert paired.compare(synthetic_runs()[:1], learned, "mnist").only_b == []


def test_identical_accuracies_are_equal_within_noise():
    from hpo.benchmarks import paired

    found = paired.compare(synthetic_runs(), synthetic_runs(), "mnist")
    assert found.verdict == "equal within noise"
    assert paired.speed_line(3.0, found) == (
        "Speed-up, study wall time: **3.00x** at equal accuracy (paired, within ±1 point).")


def test_a_five_point_shift_is_different():
    from hpo.benchmarks import paired

    jitter = (0.1, -0.1, 0.2, -0.2, 0.0, 0.1, -0.1, 0.05, -0.05, 0.0, 0.15, -0.15)
    found = paired.compare(synthetic_runs(), synthetic_runs([5 + j for j in jitter]), "mnist")
    assert found.verdict == "different (interval [+4.92, +5.08] excludes 0 and is not inside ±1)"
    assert paired.speed_line(3.0, found) == (
        "Speed-up, study wall time: **3.00x**; not a speed-up at equal accuracy (accuracy: "
        "different, see below).")


def test_a_wide_spread_cannot_tell_and_says_how_many_pairs_would():
    from hpo.benchmarks import paired

    found = paired.compare(synthetic_runs(), synthetic_runs((2.5, -2.5) * 6), "mnist")
    assert found.verdict == ("cannot tell (interval [-1.66, +1.66]; about 74 pairs where both "
                             "ways train would narrow it to the margin: --repeats 19)")
    wider = paired.compare(synthetic_runs(), synthetic_runs((8.0, -8.0) * 6), "mnist")
    assert wider.verdict == ("cannot tell (interval [-5.31, +5.31]; more than 30 seeds per "
                             "configuration would be needed to narrow it to the margin)")
    # With a third of the pairs collapsed in both ways, 77 trained pairs take 29 seeds, not 20.
    down = {(config, 2) for config in CONFIGS}
    fewer = paired.compare(synthetic_runs(collapsed=down),
                           synthetic_runs((2.5, -2.5) * 6, collapsed=down), "mnist")
    assert fewer.verdict == ("cannot tell (interval [-2.23, +2.23]; about 77 pairs where both "
                             "ways train would narrow it to the margin: --repeats 29)")
    # A wider margin decides the first: its interval lies inside ±2.
    assert paired.compare(synthetic_runs(), synthetic_runs((2.5, -2.5) * 6), "mnist",
                          margin=2.0).verdict == "equal within noise"
    assert "not a speed-up at equal accuracy (accuracy: cannot tell," in paired.speed_line(
        3.0, found)


def test_a_result_without_runs_draws_no_accuracy_verdict(tmp_path):
    from hpo.cli import main

    committed = json.loads(open("reports/bench/training_dropout_location_mnist.json").read())
    (tmp_path / "old.json").write_text(json.dumps(committed))
    assert main(["bench", "--render", str(tmp_path / "old.json")]) == 0
    md = (tmp_path / "old.md").read_text()
    assert "at equal accuracy" not in md.replace("not a speed-up at equal accuracy", "")
    assert ("Speed-up, study wall time: **3.00x**; accuracy not compared run by run (see "
            "below).") in md
    assert ("This result predates the paired comparison: it holds each way's mean and standard "
            "deviation of test accuracy only (seeds' way 96.49 ± 0.54, hpo 96.69 ± 0.25 over 12 "
            "and 12 runs; means differ by +0.20 points)") in md
    assert ("`hpo bench --dataset mnist --data-dir ../shared/data` re-measures it with the "
            "paired comparison (equivalence margin ±1 point, `--margin`).") in md


def test_a_written_result_renders_its_paired_comparison_again(tmp_path):
    def way(name, runs):
        return training.WayResult(name, 10.0, 100.0, 1.0, 96.0, 0.3, len(runs), 500.0,
                                  runs=runs)

    result = training.BenchResult(
        study="dropout_location", dataset="mnist", epochs=2, repeats=3, configurations=4,
        jobs=2, precision="fp32", machine={"cpus": 2, "processor": "x86_64", "torch": "2",
                                           "load_average": 0.5},
        ways=[way("seeds' way", synthetic_runs()),
              way("hpo", synthetic_runs(collapsed={("dropout_location=after_fc", 0)}))])
    json_path, md_path = training.write(result, tmp_path, "hpo bench")
    written = md_path.read_text()
    assert "Speed-up, study wall time: **1.00x** at equal accuracy" in written
    assert "Only hpo collapsed in: dropout_location=after_fc seed 0." in written
    md_path.unlink()
    assert training.render(json_path).read_text() == written
