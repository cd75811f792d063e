"""`hpo bench`: the same trials two ways, hpo's path against the seeds' way, in one run.

The seeds' way is what the original course reports did: a torchvision dataset whose
``__getitem__`` turns each image into a tensor (PIL -> ToTensor -> Normalize), a DataLoader
with shuffling, one trial after another, evaluation through a DataLoader too. hpo's path is
``hpo run`` itself: tensors resident on the device, permutation batches, batched evaluation
under inference mode, and worker processes with pinned thread counts.
Both train the same model (same builder, optimizer, epochs and seeds) on the same dataset.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hpo import spec
from hpo.benchmarks import paired
from hpo.nn.data import SPLIT_SEED, default_data_dir
from hpo.nn.train import peak_rss_mb
from hpo.schema import trial_label
from hpo.space import cell_key

if TYPE_CHECKING:
    from PIL.Image import Image
    from torch import Tensor, nn, optim
    from torch.utils.data import DataLoader

R = TypeVar("R")


@dataclass
class WayResult:
    name: str
    wall_time: float  # whole study, start-up and data loading included
    images_per_s: float  # training images per second of epoch time (validation included)
    epoch_time: float  # mean seconds per epoch of one trial
    test_acc_mean: float
    test_acc_std: float
    trials: int
    peak_rss_mb: float  # per worker process
    notes: str = ""
    # One record per run: config (label), seed, test_acc, train_acc, train_loss (final epoch);
    # the paired comparison reads these. Results written before it have none.
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BenchResult:
    study: str
    dataset: str
    epochs: int
    repeats: int
    configurations: int
    jobs: int
    precision: str
    device: str = "cpu"
    machine: dict[str, Any] = field(default_factory=dict)
    ways: list[WayResult] = field(default_factory=list)
    loss_reduction: str = "mean"  # for the at_chance rule on the final training loss
    margin: float = paired.MARGIN  # equivalence margin of the accuracy verdict (points)

    @property
    def speedup(self) -> float:
        seeds, hpo_way = self.ways
        return seeds.wall_time / hpo_way.wall_time

    def comparison(self) -> paired.Paired | None:
        """The two ways' runs paired by (configuration, seed); None where a way has no
        per-run records (a result written before the paired comparison)."""
        seeds, hpo_way = self.ways
        if not seeds.runs or not hpo_way.runs:
            return None
        return paired.compare(seeds.runs, hpo_way.runs, self.dataset, self.loss_reduction,
                              self.margin)


def run_record(cell: dict[str, Any], seed: int, test_acc: float, train_acc: float | None,
               train_loss: float | None) -> dict[str, Any]:
    """One run as the paired comparison reads it; the configuration's label is taken from its
    canonical key, so both ways name a cell alike whatever order its keys came in."""
    return {"config": trial_label(json.loads(cell_key(cell))), "seed": int(seed),
            "test_acc": test_acc, "train_acc": train_acc, "train_loss": train_loss}


def machine_info(device: str = "cpu") -> dict[str, Any]:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0],
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class _SeedsDataset:
    """Per-sample conversion exactly as torchvision's MNIST does it (PIL, then transforms)."""

    def __init__(self, images: Tensor, labels: Tensor,
                 transform: Callable[[Image], Tensor]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image

        img = self.images[i]  # C x H x W, uint8
        pil = Image.fromarray(img[0].numpy(), mode="L") if img.shape[0] == 1 else Image.fromarray(
            img.permute(1, 2, 0).numpy())
        return self.transform(pil), int(self.labels[i])


def _seeds_datasets(name: str, data_dir: Path) -> tuple[_SeedsDataset, _SeedsDataset]:
    """(train+val, test) datasets with per-sample transforms, as torchvision's datasets give
    them (PIL image, ToTensor, Normalize); the pixels come from hpo's own readers, which read
    every layout hpo accepts (CIFAR-10's binary release included, which torchvision cannot)."""
    import torch
    from torchvision import transforms

    from hpo.nn.data import read_arrays

    train_x, train_y, test_x, test_y, _ = read_arrays(name, data_dir)
    if name == "digits":  # 0..16: scale to 0..255 so ToTensor's /255 gives 0..1 as for MNIST
        train_x = (train_x.int() * 255 // 16).to(torch.uint8)
        test_x = (test_x.int() * 255 // 16).to(torch.uint8)
    channels = train_x.shape[1]
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize((0.5,) * channels, (0.5,) * channels)])
    return _SeedsDataset(train_x, train_y, tf), _SeedsDataset(test_x, test_y, tf)


def _loader_eval(model: nn.Module, loader: DataLoader, device: str) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
            n += len(yb)
    return loss / n, 100.0 * correct / n


def run_seeds_way(study: spec.Study, data_dir: Path, device: str = "cpu") -> WayResult:
    """One trial at a time, DataLoader with per-sample transforms (the course reports' code);
    on a GPU each batch is copied to it as the tutorials do (``xb.to(device)``)."""
    import torch
    from torch.utils.data import DataLoader, random_split

    from hpo.nn.models import ModelConfig, build_model
    from hpo.nn.train import TrainConfig, make_optimizer

    started = time.perf_counter()
    config = study.config
    full, test = _seeds_datasets(config["dataset"], data_dir)
    n_val = round(len(full) * config["val_fraction"])
    train, val = random_split(full, [len(full) - n_val, n_val],
                              generator=torch.Generator().manual_seed(SPLIT_SEED))
    shape = tuple(full[0][0].shape)
    runs, epoch_times, images = [], [], 0
    for cell in study.cells():
        resolved = study.resolve(cell)
        for seed in study.seeds():
            torch.manual_seed(seed)
            model = build_model(ModelConfig.from_config(resolved), shape, 10).to(device)
            optimizer = make_optimizer(model.parameters(), TrainConfig.from_config(resolved))
            loader = DataLoader(train, batch_size=config["batch_size"], shuffle=True)
            for _ in range(config["epochs"]):
                t0 = time.perf_counter()
                train_loss, train_acc = _loader_epoch(model, optimizer, loader, device)
                _loader_eval(model, DataLoader(val, batch_size=1000), device)
                epoch_times.append(time.perf_counter() - t0)
                images += len(train)
            test_acc = _loader_eval(model, DataLoader(test, batch_size=1000), device)[1]
            runs.append(run_record(cell, seed, test_acc, train_acc, train_loss))
    accs = [r["test_acc"] for r in runs]
    return WayResult(
        name="seeds' way (DataLoader + per-sample ToTensor, one trial at a time)",
        wall_time=time.perf_counter() - started,
        images_per_s=images / sum(epoch_times),
        epoch_time=statistics.mean(epoch_times),
        test_acc_mean=statistics.mean(accs),
        test_acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        trials=len(accs),
        peak_rss_mb=peak_rss_mb(),
        runs=runs,
    )


def _loader_epoch(model: nn.Module, optimizer: optim.Optimizer, loader: DataLoader,
                  device: str) -> tuple[float, float]:
    """One training epoch the tutorials' way: (mean training loss, training accuracy %) over
    the epoch's minibatches, as hpo records them (the at_chance rule reads the last epoch's)."""
    import torch.nn.functional as F

    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(yb)
        correct += (out.detach().argmax(1) == yb).sum().item()
        seen += len(yb)
    return loss_sum / max(seen, 1), 100.0 * correct / max(seen, 1)


def run_hpo_way(study: spec.Study, data_dir: Path, jobs: int, device: str = "cpu") -> WayResult:
    """`hpo run` itself, into a throwaway store."""
    from hpo import runner, store

    # Read here first: unreadable data is one line now, not a failure in every worker (whose
    # advice, to re-run the same command to resume, does not fit a throwaway store).
    n_train = _train_size(study, data_dir)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = store.parse(f"sqlite:///{Path(tmp) / 'bench.db'}")
        # No learning-curve figures: the store is thrown away (they cost ~0.3 s a trial).
        opts = runner.RunOptions(storage_url=url, device=device, jobs=jobs,
                                 data_dir=str(data_dir), progress=False, save_artifacts=False)
        study_obj = runner.run(study, opts)
        trials = [t for t in study_obj.get_trials() if t.state.name == "COMPLETE"]
    wall = time.perf_counter() - started
    epoch_times = [h["seconds"] for t in trials for h in t.user_attrs["history"]]
    accs = [t.user_attrs["test_acc"] for t in trials]
    runs = [run_record(json.loads(t.user_attrs["cell"]), t.user_attrs["seed"],
                       t.user_attrs["test_acc"], t.user_attrs.get("train_acc"),
                       t.user_attrs.get("train_loss")) for t in trials]
    return WayResult(
        name=f"hpo ({jobs} worker{'s' if jobs > 1 else ''}, tensors in memory, "
             f"{study.config['train.precision']})",
        wall_time=wall,
        # Workers run side by side: the study's throughput is the sum of theirs.
        images_per_s=jobs * n_train * len(epoch_times) / sum(epoch_times),
        epoch_time=statistics.mean(epoch_times),
        test_acc_mean=statistics.mean(accs),
        test_acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        trials=len(trials),
        # Each trial records its worker's peak so far; the last ones hold each worker's peak.
        peak_rss_mb=max(t.user_attrs["peak_rss_mb"] for t in trials),
        runs=runs,
    )


def _train_size(study: spec.Study, data_dir: Path) -> int:
    from hpo.nn import data

    splits = data.load(study.config["dataset"], data_dir=data_dir,
                       val_fraction=study.config["val_fraction"],
                       train_subset=study.config["train_subset"])
    return len(splits.train_y)


def run_bench(study: spec.Study, data_dir: str | None, jobs: int,
              device: str = "cpu", margin: float = paired.MARGIN) -> BenchResult:
    root = Path(data_dir) if data_dir else default_data_dir()
    result = BenchResult(
        study=study.name, dataset=study.config["dataset"], epochs=study.config["epochs"],
        repeats=study.config["repeats"], configurations=len(study.cells()), jobs=jobs,
        precision=study.config["train.precision"], device=device,
        machine=machine_info(device), loss_reduction=study.config["train.loss_reduction"],
        margin=margin,
    )
    # The seeds' way runs in a fresh process of its own: nothing hpo sets up in a process
    # (its allocator setting, torch's thread count) reaches it, and each way's peak memory
    # is its own.
    hpo_way = run_hpo_way(study, root, jobs, device)
    result.ways = [_in_fresh_process(_seeds_way_from_dict, study.to_dict(), study.source, root,
                                     device),
                   hpo_way]
    return result


def _seeds_way_from_dict(spec_dict: dict, source: str, root: Path, device: str) -> WayResult:
    return run_seeds_way(spec.from_dict(spec_dict, source), root, device)


def _in_fresh_process(fn: Callable[..., R], *args: object) -> R:
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def to_markdown(result: BenchResult, command: str) -> str:
    seeds, hpo_way = result.ways
    lines = [
        f"# hpo bench: {result.study} on {result.dataset}",
        "",
        f"Command: `{command}`",
        "",
        f"{result.configurations} configurations x {result.repeats} seeds x {result.epochs} "
        f"epochs on {_device_words(result)}; machine: {result.machine['cpus']} CPUs, "
        f"{result.machine['processor']}, "
        f"torch {result.machine['torch']}, load average at start "
        f"{result.machine['load_average']:.2f}.",
        "",
        "| way | study wall time (s) | images/s | epoch time (s) | test acc (%) | trials "
        "| peak RSS per worker (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for way in result.ways:
        lines.append(
            f"| {way.name} | {way.wall_time:.1f} | {way.images_per_s:,.0f} | "
            f"{way.epoch_time:.2f} | {way.test_acc_mean:.2f} ± {way.test_acc_std:.2f} | "
            f"{way.trials} | {way.peak_rss_mb:.0f} |"
        )
    found = result.comparison()
    lines += ["", paired.speed_line(result.speedup, found), "",
              *accuracy_lines(result, found, command), "",
              "images/s counts training images per second of epoch time (each epoch's "
              "validation included); for hpo it is summed over its parallel workers."]
    return "\n".join(lines) + "\n"


def accuracy_lines(result: BenchResult, found: paired.Paired | None, command: str) -> list[str]:
    """The accuracy paragraph: the paired comparison, or, for a result without per-run
    records, why there is none and what re-measures it (no verdict from unpaired means)."""
    seeds, hpo_way = result.ways
    if found is not None:
        return [" ".join(paired.lines(found))]
    return [
        f"This result predates the paired comparison: it holds each way's mean and standard "
        f"deviation of test accuracy only (seeds' way {seeds.test_acc_mean:.2f} ± "
        f"{seeds.test_acc_std:.2f}, hpo {hpo_way.test_acc_mean:.2f} ± "
        f"{hpo_way.test_acc_std:.2f} over {seeds.trials} and {hpo_way.trials} runs; means "
        f"differ by {hpo_way.test_acc_mean - seeds.test_acc_mean:+.2f} points), not the "
        "per-run results that pairing by configuration and seed needs, so it draws no "
        "accuracy verdict and does not count collapsed runs. "
        f"`{command}` re-measures it with the paired comparison "
        f"(equivalence margin ±{result.margin:g} point{'' if result.margin == 1 else 's'}, "
        "`--margin`)."]


def from_payload(payload: dict[str, Any]) -> tuple[BenchResult, str]:
    """A written result (its JSON, read) back as (BenchResult, command), older results
    included: a field they lack takes its default (no runs: no paired comparison)."""
    fields = {f.name for f in dataclasses.fields(BenchResult)} - {"ways"}
    way_fields = {f.name for f in dataclasses.fields(WayResult)}
    result = BenchResult(**{k: v for k, v in payload.items() if k in fields})
    result.ways = [WayResult(**{k: v for k, v in way.items() if k in way_fields})
                   for way in payload["ways"]]
    return result, payload.get("command", "hpo bench")


def render(json_path: Path) -> Path:
    """Re-write a result's Markdown from its JSON (no training); returns the .md path."""
    result, command = from_payload(json.loads(json_path.read_text()))
    md_path = json_path.with_suffix(".md")
    md_path.write_text(to_markdown(result, command))
    return md_path


def _device_words(result: BenchResult) -> str:
    return result.machine.get("gpu", result.device) if result.device == "cuda" else result.device


def result_stem(result: BenchResult) -> str:
    """training_<study>_<dataset>[_<device>][_<precision>]: the CPU fp32 result keeps the
    plain name, so each device and precision has its own committed file."""
    device = "" if result.device == "cpu" else f"_{result.device}"
    precision = "" if result.precision == "fp32" else f"_{result.precision}"
    return f"training_{result.study}_{result.dataset}{device}{precision}"


def write(result: BenchResult, out_dir: Path, command: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = result_stem(result)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    payload = asdict(result) | {"speedup": result.speedup, "command": command}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(to_markdown(result, command))
    return json_path, md_path
