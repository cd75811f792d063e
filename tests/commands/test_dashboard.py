"""The dashboard: artifact folder rule, study note, learning-curve artifacts, report figures,
`hpo dashboard` itself, and one look at it in a real (headless) browser."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note, save_note

from hpo import artifacts, dashboard, spec, store
from hpo.cli import main
from hpo.spec import tomllib
from tests.conftest import TINY_STUDY

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000")


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[str, Path]:
    """A real 4-trial, 2-epoch run of the tiny study (artifacts on): (storage URL, folder)."""
    root = tmp_path_factory.mktemp("ran")
    (root / "tiny.toml").write_text(TINY_STUDY)
    url = f"sqlite:///{root / 'runs.db'}"
    code = main(["run", "--study", str(root / "tiny.toml"), "--storage", url, "--epochs", "2",
                 "--no-progress"])
    assert code == 0
    return url, root


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[str, Path]:
    """The tiny study in a store with made-up trials (no training), as `hpo dashboard` serves
    any hpo store: (storage URL, folder)."""
    from hpo.benchmarks import synthetic

    root = tmp_path_factory.mktemp("stored")
    study = spec.validate(tomllib.loads(TINY_STUDY), "tiny.toml")
    url = f"sqlite:///{root / 'runs.db'}"
    study_obj = synthetic.create_study(store.open_storage(store.parse(url), create=True), study)
    synthetic.add(study_obj, [synthetic.trial(study, {"model.dropout_location": loc},
                                              synthetic.record(seed, test_acc=80.0))
                              for loc in ("none", "before_fc") for seed in (0, 1)])
    return url, root


# ---------------------------------------------------------------------------------------------
# Where artifacts live


def test_artifacts_dir_rule(monkeypatch, tmp_path):
    def artifacts_dir(url: str, explicit: str | None = None) -> Path:
        return artifacts.artifacts_dir(store.parse(url), explicit)

    monkeypatch.delenv("HPO_ARTIFACTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert artifacts_dir("sqlite:///runs/hpo.db") == Path("runs/hpo-artifacts")
    assert artifacts_dir("sqlite:////abs/x.sqlite3") == Path("/abs/x-artifacts")
    assert artifacts_dir("journal:runs.log") == Path("runs-artifacts")
    assert artifacts_dir("postgresql://u:pw@h/db") == tmp_path / "xdg/hpo/artifacts"
    assert artifacts_dir("sqlite:///hpo.db", "mine") == Path("mine")
    monkeypatch.setenv("HPO_ARTIFACTS", "from-env")
    assert artifacts_dir("sqlite:///hpo.db") == Path("from-env")
    assert artifacts_dir("sqlite:///hpo.db", "mine") == Path("mine")


def test_artifact_folder_that_is_a_file_is_one_line(tmp_path, capsys, write_study):
    (tmp_path / "a-file").write_text("")
    code = main(["run", "--study", str(write_study()), "--storage",
                 f"sqlite:///{tmp_path / 's.db'}", "--artifacts", str(tmp_path / "a-file")])
    assert code == 1
    assert capsys.readouterr().err == (
        f"hpo: error: artifact folder {tmp_path / 'a-file'} is a file; pass --artifacts DIR "
        "(a folder)\n")


# ---------------------------------------------------------------------------------------------
# The study note


@pytest.mark.parametrize("name", sorted(spec.shipped_studies()))
def test_note_study_file_reads_back_as_the_same_study(name):
    varied = {p.key for p in spec.load(name).space}  # a varied key cannot be --set
    study = spec.load(name, [] if "train_subset" in varied else ["train_subset=300"])
    text = dashboard.spec_toml(study.to_dict())
    assert spec.validate(tomllib.loads(text), "note").to_dict() == study.to_dict()


@pytest.mark.slow
def test_run_writes_note_and_one_learning_curve_per_trial(ran):
    url, root = ran
    study_obj = optuna.load_study(study_name="tiny", storage=url)
    note = get_note(study_obj)
    assert note.startswith("## Does dropout placement matter on a tiny net?\n")
    assert f"```sh\n{study_obj.user_attrs['hpo.command']}\n```" in note
    assert "```toml\nname = \"tiny\"\n" in note
    assert study_obj.metric_names == ["val_acc"]
    files = sorted(p.name for p in (root / "runs-artifacts").iterdir())
    ids = []
    for trial in study_obj.trials:
        assert trial.state.name == "COMPLETE"
        assert sorted(trial.intermediate_values) == [1, 2]  # the live learning curve
        metas = artifacts._metas(trial.system_attrs)
        assert [m["filename"] for m in metas] == [f"learning_curve_trial_{trial.number}.png"]
        assert metas[0]["mimetype"] == "image/png"
        ids.append(metas[0]["artifact_id"])
        path = root / "runs-artifacts" / metas[0]["artifact_id"]
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(ids) == files


def test_note_masks_passwords_and_keeps_edits(tmp_path, write_study):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = spec.load(str(write_study()))
    s = optuna.create_study(study_name="tiny", storage=url)
    s.set_user_attr("hpo.spec", study.to_dict())
    s.set_user_attr("hpo.command", "hpo run --study tiny --storage postgresql://me:pw42@h/db")
    assert dashboard.update_study_note(s) is True
    note = get_note(s)
    assert "postgresql://me:***@h/db" in note and "pw42" not in note
    assert dashboard.update_study_note(s) is False  # unchanged: no new version
    s.set_user_attr("hpo.spec", spec.load(str(write_study()), ["repeats=5"]).to_dict())
    assert dashboard.update_study_note(s) is True  # the spec grew: hpo's own note follows
    assert "repeats = 5" in get_note(s)
    save_note(s, "my own words")
    s.set_user_attr("hpo.spec", study.to_dict())
    assert dashboard.update_study_note(s) is False  # never over someone's edit
    assert get_note(s) == "my own words"


@pytest.mark.slow
def test_note_is_written_without_importing_the_dashboard_app(tmp_path, write_study):
    # The runner writes the note before workers start: the dashboard's web app (and the
    # optuna.importance it imports) must not be loaded for it.
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec_dict = spec.load(str(write_study())).to_dict()
    code = (
        "import sys, optuna\n"
        "from hpo import dashboard\n"
        f"s = optuna.create_study(study_name='n', storage={url!r})\n"
        f"s.set_user_attr('hpo.spec', {spec_dict!r})\n"
        "assert dashboard.update_study_note(s) is True\n"
        "print(sorted(m for m in sys.modules if m.startswith('optuna_dashboard')),"
        " 'optuna.importance' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[] False"
    assert get_note(optuna.load_study(study_name="n", storage=url)).startswith("#")


def test_curve_data_drops_non_finite_values():
    data = dashboard.curve_data([
        {"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "train_acc": 10.0, "val_acc": 11.0},
        {"epoch": 2, "train_loss": float("nan"), "val_loss": float("inf"), "train_acc": None,
         "val_acc": 12.5},
    ])
    assert data == dashboard.CurveData([1, 2], [2.0, None], [1.5, None], [10.0, None],
                                      [11.0, 12.5])
    fig = dashboard.plot_curve(data, "t")
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy (%)"]


# ---------------------------------------------------------------------------------------------
# Optional and robust


@pytest.mark.slow
def test_no_artifacts_stores_no_figures(tmp_path, write_study, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--study", str(write_study()), "--storage", url, "--repeats", "1",
                 "--no-progress", "--no-artifacts"]) == 0
    study_obj = optuna.load_study(study_name="tiny", storage=url)
    assert all(not artifacts._metas(t.system_attrs) for t in study_obj.trials)
    assert not (tmp_path / "s-artifacts").exists()
    assert get_note(study_obj)  # the note is not an artifact: always written
    assert "HPO_NO_ARTIFACTS" not in os.environ  # restored after the run


@pytest.mark.slow
def test_failing_figure_warns_once_and_trials_complete(tmp_path, write_study, capsys,
                                                       monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(dashboard, "plot_curve", broken)
    monkeypatch.setattr(artifacts, "_warned", set())
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--study", str(write_study()), "--storage", url, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("hpo: warning:") == 1
    assert ("hpo: warning: learning curves not saved (first failure: trial 0): "
            "RuntimeError: no fonts\n") in err
    states = [t.state.name for t in optuna.load_study(study_name="tiny", storage=url).trials]
    assert states == ["COMPLETE"] * 4


def test_upload_report_figures_replaces_same_name(tmp_path):
    s = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="r")
    store = artifacts.artifact_store(tmp_path / "art")
    fig1, fig2 = tmp_path / "means.png", tmp_path / "curves.png"
    fig1.write_bytes(PNG_MAGIC + b"1")
    fig2.write_bytes(PNG_MAGIC + b"2")
    first = artifacts.upload_report_figures(s, [fig1, fig2], store)
    assert sorted(m["filename"] for m in artifacts.study_artifacts(s)) == [
        "report_curves.png", "report_means.png"]
    fig1.write_bytes(PNG_MAGIC + b"new")
    again = artifacts.upload_report_figures(s, [fig1], store)
    metas = {m["filename"]: m["artifact_id"] for m in artifacts.study_artifacts(s)}
    assert metas == {"report_means.png": again[0], "report_curves.png": first[1]}
    assert sorted(p.name for p in (tmp_path / "art").iterdir()) == sorted([again[0], first[1]])
    assert (tmp_path / "art" / again[0]).read_bytes() == PNG_MAGIC + b"new"
    with pytest.raises(artifacts.HpoError, match=r"^report figure .*gone.png does not exist"):
        artifacts.upload_report_figures(s, [tmp_path / "gone.png"], store)


# ---------------------------------------------------------------------------------------------
# `hpo dashboard`


def test_dashboard_serves_loopback_with_artifacts_by_default(stored, monkeypatch, capsys):
    url, root = stored
    calls = []
    monkeypatch.setattr("optuna_dashboard.run_server",
                        lambda storage, **kw: calls.append((storage, kw)))
    assert main(["dashboard", "--storage", url]) == 0
    (storage, kw), = calls
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8080
    assert kw["artifact_store"]._base_path == root / "runs-artifacts"
    assert optuna.get_all_study_names(storage=storage) == ["tiny"]
    assert capsys.readouterr().err == (
        f"hpo: dashboard for {url} at http://127.0.0.1:8080/dashboard/ (artifacts: "
        f"{root / 'runs-artifacts'}); Ctrl-C stops it\nhpo: dashboard stopped\n")


def test_dashboard_on_another_address_warns(stored, monkeypatch, capsys):
    monkeypatch.setattr("optuna_dashboard.run_server", lambda storage, **kw: None)
    assert main(["dashboard", "--storage", stored[0], "--host", "0.0.0.0", "--port", "9000"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("hpo: warning: --host 0.0.0.0 makes the dashboard reachable from "
                          "other machines; it has no login")
    assert "http://0.0.0.0:9000/dashboard/" in err
    for host in ("localhost", "127.0.0.2", "::1"):
        main(["dashboard", "--storage", stored[0], "--host", host])
        assert "warning" not in capsys.readouterr().err


def test_dashboard_errors_are_one_line(tmp_path, stored, capsys):
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: no store at {tmp_path / 'none.db'}; run `hpo run` first or pass "
        "--storage URL\n")
    assert main(["dashboard", "--storage", stored[0], "--port", "0"]) == 1
    assert capsys.readouterr().err == "hpo: error: --port must be between 1 and 65535, got 0\n"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--storage", stored[0], "--port", str(port)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"hpo: error: port {port} on 127.0.0.1 is in use; pick another with --port N")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hpo dashboard exited: {proc.communicate()[1]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("hpo dashboard did not answer within a minute")


@pytest.mark.slow
def test_dashboard_in_a_real_browser(ran, tmp_path):
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    url, root = ran
    study_id = optuna.load_study(study_name="tiny", storage=url)._study_id
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", "--storage", url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    shots = Path(os.environ.get("HPO_SCREENSHOTS", tmp_path))
    driver = None
    try:
        _wait_until_up(proc, port)
        options = Options()
        options.binary_location = chromium
        for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        wait = WebDriverWait(driver, 60)

        def page_text(d) -> str:  # textContent includes the plots' SVG labels
            return d.execute_script("return document.body.textContent")

        base = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        driver.get(base)
        wait.until(lambda d: "tiny (id=" in page_text(d) and "trial #3" in page_text(d))
        assert "Intermediate values" in page_text(driver)
        legend = driver.execute_script(
            "return [...document.querySelectorAll('.legendtext')].map(e => e.textContent)")
        assert {t.strip() for t in legend if t.startswith("trial #")} == {
            f"trial #{n}" for n in range(4)}  # one live learning curve per trial
        driver.save_screenshot(str(shots / "study.png"))

        driver.get(f"{base}/trials")
        img = "img[alt='learning_curve_trial_0.png']"
        wait.until(lambda d: "4 Trials" in page_text(d) and d.execute_script(
            f"const i = document.querySelector(\"{img}\"); return i && i.naturalWidth > 0"))
        assert driver.execute_script(
            f"return document.querySelector(\"{img}\").naturalWidth") == 630  # 7 in at 90 dpi
        driver.save_screenshot(str(shots / "trials.png"))

        driver.get(f"{base}/note")
        wait.until(lambda d: "Does dropout placement matter on a tiny net?" in page_text(d))
        assert 'name = "tiny"' in page_text(driver)
    finally:
        if driver is not None:
            driver.quit()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("hpo: dashboard stopped")
