"""Faults a bad-input sweep found (issue 26): each one line, the right exit code, nothing
stored or overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.cli import main

STUDIES = Path(__file__).resolve().parent.parent / "studies"


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "."])
def test_a_study_name_that_is_a_path_is_refused_before_anything_is_stored(name, tmp_path,
                                                                          capsys):
    code = main(["run", "--study", "dropout_location", "--name", name, "--storage",
                 f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {STUDIES}/dropout_location.toml: name {name!r} cannot be a folder name "
        "(no '/', '\\', '.', '..' or control characters); choose a plain name such as "
        "my_study\n")
    assert not (tmp_path / "s.db").exists()


def test_a_seed_past_what_torch_takes_is_refused(tmp_path, capsys):
    code = main(["run", "--study", "dropout_location", "--set", "seed=1180591620717411303424",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {STUDIES}/dropout_location.toml: seed must be an integer >= 0 and <= "
        "4294867295, got 1180591620717411303424\n")
    assert not (tmp_path / "s.db").exists()


def test_threads_past_the_cores_are_refused(tmp_path, capsys):
    from hpo.runner import usable_cores

    code = main(["run", "--study", "dropout_location", "--threads", "100000", "--storage",
                 f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: --threads 100000 is more than the {usable_cores()} usable cores; use at "
        "most that, or --oversubscribe to insist\n")
    assert not (tmp_path / "s.db").exists()


@pytest.fixture
def journal_store(tmp_path):
    """A journal store with one hand-made hpo study (no training)."""
    import copy

    from hpo import spec, store
    from hpo.benchmarks import synthetic

    raw = {"name": "mini", "dataset": "digits", "epochs": 1, "repeats": 1, "sampler": "grid",
           "space": {"train.lr": [0.01, 0.1]}}
    study = spec.validate(copy.deepcopy(raw), "test")
    url = store.parse(f"journal:{tmp_path / 'runs.journal'}")
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    synthetic.add(study_obj, [synthetic.trial(study, {"train.lr": lr},
                                              synthetic.record(0, test_acc=50.0))
                              for lr in (0.01, 0.1)])
    return tmp_path / "runs.journal"


def test_export_never_writes_over_a_store(journal_store, tmp_path, capsys):
    before = journal_store.read_bytes()
    url = f"journal:{journal_store}"
    assert main(["export", "mini", "--storage", url, "--output", str(journal_store)]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: --output {journal_store} is a store (it would be overwritten); pick "
        "another --output, e.g. trials.csv\n")
    assert journal_store.read_bytes() == before
    sqlite = tmp_path / "other.db"
    sqlite.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    assert main(["export", "mini", "--storage", url, "--output", str(sqlite)]) == 1
    assert capsys.readouterr().err.startswith(f"hpo: error: --output {sqlite} is a store")
    assert main(["export", "mini", "--storage", url, "--output", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text().startswith("number,state,train.lr,seed,")
    assert not list(tmp_path.glob(".*hpo-tmp"))


def test_derived_channels_past_a_float_are_refused(tmp_path, capsys):
    code = main(["run", "--study", "dropout_location", "--set", "model.conv_layers=1100",
                 "--set", "model.channels=[]", "--set", "model.pool=none", "--storage",
                 f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {STUDIES}/dropout_location.toml: model: conv layer 1021 would have 16 x "
        "2.0^1020 channels (model.width x model.growth^(layer - 1)), more than any machine "
        "holds; use fewer model.conv_layers, a smaller model.growth or list model.channels\n")
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("sets, line", [
    (["model.channels=[1000000, 4]"],
     "model.channels = [1000000, 4] needs about 69.4 GB to train (46,000,174 parameters, "
     "batch_size 64), more than one worker may take (7.8 GB of 9.8 GB available); use a smaller "
     "model.channels"),
    (["model.fc_layers=1", "model.fc_width=1000000000"],
     "model.fc_width = 1000000000 needs about 1,356.0 GB to train (27,000,000,750 parameters, "
     "batch_size 64), more than one worker may take (7.8 GB of 9.8 GB available); use a smaller "
     "model.fc_width"),
])
def test_a_model_one_worker_cannot_hold_is_refused_before_anything_is_stored(
        sets, line, monkeypatch, tmp_path, capsys):
    from hpo import runner

    monkeypatch.setattr(runner.plan, "available_mb", lambda: 10_000.0)
    # Never train such a model here if the check regresses: that would take the machine.
    monkeypatch.setattr(runner.pool, "work", lambda *a, **k: pytest.fail("training started"))
    argv = ["run", "--study", "dropout_location", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 1
    assert capsys.readouterr().err == f"hpo: error: {STUDIES}/dropout_location.toml: {line}\n"
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("sets", [
    [], ["model.conv_layers=3", "model.channels=[]", "model.pool=none"],
    ["model.fc_layers=2", "model.fc_width=30", "model.batch_norm=both", "model.bias=false"],
    ["model.fc_layers=1"],
])
def test_the_size_check_counts_the_parameters_torch_builds(sets):
    from hpo import spec
    from hpo.nn import models
    from hpo.nn.shapes import training_bytes

    config = spec.load("dropout_location", sets).config
    if sets == ["model.fc_layers=1"]:
        config = {**config, "model.family": "mlp"}
    built = models.build_model(models.ModelConfig.from_config(config), (1, 8, 8), 10)
    assert training_bytes(config)[2] == models.count_parameters(built)


@pytest.fixture
def tiny_mnist(tmp_path):
    """MNIST's four IDX files, 10 training and 5 test images."""
    import struct

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 10), ("t10k", 5)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">HBBIII", 0, 8, 3, n, 28, 28) + bytes(n * 28 * 28))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">HBBI", 0, 8, 1, n) + bytes(range(n)))
    return raw


def test_a_truncated_mnist_file_stores_nothing(tiny_mnist, tmp_path, capsys):
    path = tiny_mnist / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-40])
    code = main(["run", "--study", "dropout_location", "--dataset", "mnist", "--data-dir",
                 str(tmp_path / "data"), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: dataset 'mnist' in {tiny_mnist} cannot be read (train-images-idx3-ubyte "
        "is truncated: 7816 bytes, its header says 7856); delete the files and download them "
        "again\n")
    assert not (tmp_path / "s.db").exists()


def test_an_mnist_file_with_a_wrong_magic_number_is_not_called_truncated(tiny_mnist, tmp_path,
                                                                          capsys):
    path = tiny_mnist / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + path.read_bytes()[4:])
    code = main(["run", "--study", "dropout_location", "--dataset", "mnist", "--data-dir",
                 str(tmp_path / "data"), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: dataset 'mnist' in {tiny_mnist} cannot be read (train-labels-idx1-ubyte is "
        "not an IDX file of unsigned bytes (its magic number is 00 00 08 03, not 00 00 08 01)); "
        "delete the files and download them again\n")
    assert not (tmp_path / "s.db").exists()


def test_a_data_dir_that_is_a_file_is_named_so(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    code = main(["run", "--study", "dropout_location", "--dataset", "mnist", "--data-dir",
                 str(tmp_path / "afile"), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: dataset 'mnist': the data folder {tmp_path}/afile is a file, not a folder; "
        "pass --data-dir a folder (or leave it out for $HPO_DATA_DIR or ./data)\n")
    assert not (tmp_path / "s.db").exists()


def test_a_study_that_is_a_folder_is_named_so(tmp_path, capsys):
    code = main(["run", "--study", str(tmp_path), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {tmp_path} is a folder, not a study file; give a .toml file (e.g. one in "
        "it), or a shipped study name (`hpo studies`)\n")
    assert not (tmp_path / "s.db").exists()


def test_the_dashboard_says_nothing_of_listening_on_a_busy_port_or_a_bad_host(journal_store,
                                                                              capsys):
    import socket

    url = f"journal:{journal_store}"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--storage", url, "--port", str(port)]) == 1
    assert capsys.readouterr() == ("", f"hpo: error: port {port} on 127.0.0.1 is in use; pick "
                                       "another with --port N\n")
    assert main(["dashboard", "--storage", url, "--host", "192.0.2.1", "--port", "8080"]) == 1
    assert capsys.readouterr().err == (
        "hpo: warning: --host 192.0.2.1 makes the dashboard reachable from other machines; it "
        "has no login, and anyone who reaches it can edit and delete studies\n"
        "hpo: error: cannot serve on 192.0.2.1:8080: Cannot assign requested address; check "
        "--host and --port\n")


def test_a_report_on_a_full_disk_names_the_file(journal_store, tmp_path, capsys):
    folder = tmp_path / "out" / "mini"
    folder.mkdir(parents=True)
    (folder / "table.csv").symlink_to("/dev/full")  # every write there: ENOSPC
    code = main(["report", "--study", "mini", "--storage", f"journal:{journal_store}", "--out",
                 str(tmp_path / "out"), "--no-artifacts"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {folder / 'table.csv'}: No space left on device (the disk is full; free "
        "space, then re-run the same command)\n")


def test_bench_on_unreadable_data_fails_before_its_workers_start(tmp_path, capsys):
    folder = tmp_path / "data" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f"{name}.bin").write_bytes(bytes(3073 * 2))
    (folder / "data_batch_3.bin").write_bytes(bytes(3073 * 2 + 10))
    code = main(["bench", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--jobs", "2", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"hpo: error: dataset 'cifar10': {folder / 'data_batch_3.bin'} is truncated (6156 bytes, "
        "not a whole number of 3073-byte records); delete it and unpack the official release "
        f"into {tmp_path / 'data'} again (or download it with torchvision)")
    assert "resume" not in err and "workers failed" not in err


def test_an_sqlite_store_with_scribbled_pages_is_called_corrupt(tmp_path, capsys):
    from hpo import spec, store
    from hpo.benchmarks import synthetic

    study = spec.validate({"name": "mini", "dataset": "digits", "epochs": 1, "repeats": 1,
                           "space": {"train.lr": [0.01, 0.1]}}, "test")
    db = tmp_path / "s.db"
    storage = store.open_storage(store.parse(f"sqlite:///{db}"), create=True)
    study_obj = synthetic.create_study(storage, study)
    synthetic.add(study_obj, [synthetic.trial(study, {"train.lr": lr},
                                              synthetic.record(0, test_acc=50.0))
                              for lr in (0.01, 0.1)] * 20)
    size = db.stat().st_size
    with db.open("r+b") as fh:
        for offset in range(4096, size, 4096):
            fh.seek(offset + 100)
            fh.write(b"\xa5" * 500)
    for command in (["show", "mini"], ["report", "--study", "mini", "--out",
                                       str(tmp_path / "out")]):
        assert main([*command, "--storage", f"sqlite:///{db}"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"hpo: error: store {db} is corrupt (")
        assert err.endswith("); restore it from a backup\n") and err.count("\n") == 1


def test_a_grid_of_more_runs_than_hpo_queues_is_refused(tmp_path, capsys):
    code = main(["run", "--study", "dropout_location", "--repeats", "100000", "--storage",
                 f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {STUDIES}/dropout_location.toml: 12 configurations x 100,000 seeds "
        "(repeats) = 1,200,000 runs, more than hpo queues (100,000); lower repeats or narrow "
        "[space]\n")
    assert not (tmp_path / "s.db").exists()


def test_a_report_whose_figures_cannot_be_attached_is_still_written(journal_store, tmp_path,
                                                                    capsys, monkeypatch):
    """A read-only store (root ignores permissions here, so the upload is made to fail): the
    report is written, one warning says the figures were not attached, exit 0."""
    from hpo.commands import report

    def refuse(*_args, **_kw):
        raise PermissionError(13, "Permission denied", str(journal_store))

    monkeypatch.setattr(report, "_attach_figures", refuse)
    code = main(["report", "--study", "mini", "--storage", f"journal:{journal_store}",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    err = capsys.readouterr().err
    assert ("hpo: warning: the report is written, but its figures were not attached to the "
            "study for optuna-dashboard (PermissionError: [Errno 13] Permission denied: "
            f"'{journal_store}'); the store or its artifacts folder is read-only? "
            "--no-artifacts skips this") in err
    assert (tmp_path / "out" / "mini" / "README.md").exists()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_store_in_a_read_only_folder_is_one_line_and_untouched(kind, tmp_path, monkeypatch,
                                                                 capsys):
    """The store may be written, its folder may not: SQLite's journal (and the journal store's
    lock) cannot be made beside it, which the store reported as an internal error. Root ignores
    the mode, so hpo goes by the mode bits, as for the store itself (checked with a process
    without root's override by hand: the same line)."""
    from hpo import runner, spec, store
    from hpo.benchmarks import synthetic

    from .conftest import make_grid_study

    folder = tmp_path / "ro"
    folder.mkdir()
    name = {"sqlite": "s.db", "journal": "runs.log"}[kind]
    url = {"sqlite": "sqlite:///", "journal": "journal:"}[kind] + str(folder / name)
    study_file = make_grid_study(tmp_path)
    synthetic.create_study(store.open_storage(store.parse(url), create=True),
                           spec.load(str(study_file)))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(runner.pool, "work", lambda *a, **k: pytest.fail("training started"))
    folder.chmod(0o555)
    try:
        code = main(["run", "--study", str(study_file), "--storage", url, "--no-artifacts",
                     "--no-progress"])
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
    finally:
        folder.chmod(0o755)
    beside = {"sqlite": "SQLite's journal s.db-journal",
              "journal": "the journal's lock runs.log.lock"}[kind]
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: store {folder / name}: its folder {folder} is read-only, and every run "
        f"writes {beside} beside the store; make the folder writable, or move the store to a "
        "writable one and pass its new path to --storage\n")
    assert after == before


def test_a_large_queue_says_so_and_shows_its_progress(monkeypatch, tmp_path, capsys):
    from hpo import runner

    from .conftest import make_grid_study

    monkeypatch.setattr(runner.queue, "QUEUE_NOTE_RUNS", 4)
    monkeypatch.setattr(runner.queue, "QUEUE_PROGRESS_S", 0.0)  # a line after every run
    monkeypatch.setattr(runner.pool, "work", lambda *a, **k: 0)
    study = make_grid_study(tmp_path, cells=2, repeats=2)
    assert main(["run", "--study", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--no-progress", "--no-artifacts"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "hpo: queueing 4 runs (configuration x seed) of study 'tiny'; this takes a while "
        "(Ctrl-C stops it, the same command resumes)",
        "hpo: queued 1 of 4 runs", "hpo: queued 2 of 4 runs", "hpo: queued 3 of 4 runs",
        "hpo: queued 4 of 4 runs"]
    monkeypatch.setattr(runner.queue, "QUEUE_NOTE_RUNS", 5)  # 6 runs, 2 queued already: quiet
    assert main(["run", "--study", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--no-progress", "--no-artifacts", "--repeats", "3"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_while_a_large_study_is_queued_exits_130_with_one_line(jobs, tmp_path):
    """SIGTERM (scancel, a pod stopped) while 600 runs are queued: the handler is in place
    before queueing (it was not: exit 143, no line), what is queued is whole, no trial runs."""
    import signal
    import sqlite3

    from .conftest import make_grid_study, start_hpo

    study = make_grid_study(tmp_path, cells=2, repeats=300)
    db = tmp_path / "s.db"
    proc = start_hpo("run", "--study", str(study), "--storage", f"sqlite:///{db}",
                     "--no-progress", "--no-artifacts", "--jobs", jobs, "--oversubscribe",
                     "--threads", "1", cwd=tmp_path)
    first = proc.stderr.readline()  # the queueing line: queueing has begun
    proc.send_signal(signal.SIGTERM)
    _out, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, first + rest
    assert first == ("hpo: queueing 600 runs (configuration x seed) of study 'tiny'; this takes "
                     "a while (Ctrl-C stops it, the same command resumes)\n")
    lines = rest.splitlines()
    assert lines[-1] == ("hpo: interrupted; finished trials are kept, re-run the same command "
                         "to resume")
    assert all(line.startswith("hpo: queued ") for line in lines[:-1]), rest
    con = sqlite3.connect(db)
    queued = dict(con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
    con.close()
    assert set(queued) <= {"WAITING"} and queued.get("WAITING", 0) < 600, queued
