from __future__ import annotations

import json

from hpo import spec
from hpo.benchmarks import training


def test_bench_runs_the_same_trials_both_ways(write_study, tmp_path):
    study = spec.load(str(write_study()))
    result = training.run_bench(study, None, jobs=1)
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
