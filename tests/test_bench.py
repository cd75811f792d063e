from __future__ import annotations

import json

from hpo import spec
from hpo.benchmarks import training


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
