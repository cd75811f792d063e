from __future__ import annotations

import pytest

from hpo import spec
from hpo.errors import SpecError
from tests.conftest import TINY_STUDY


def load_text(write_study, text: str, overrides=()):
    return spec.load(str(write_study(text)), overrides)


def error_of(write_study, text: str, overrides=()) -> str:
    with pytest.raises(SpecError) as info:
        load_text(write_study, text, overrides)
    return str(info.value)


def test_every_shipped_study_validates():
    names = set(spec.shipped_studies())
    assert {"dropout_location", "dropout_rate", "learning_rate", "weight_decay", "optimizer",
            "activation", "batch_norm"} <= names
    for name in names:
        study = spec.load(name)
        assert study.name == name
        assert study.config["question"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10", "imagefolder"])
def test_every_shipped_study_fits_every_input_shape(dataset):
    for name in spec.shipped_studies():
        family = spec.load(name).config["model.family"]
        if family in ("alexnet", "efficientnet_lite0") and dataset != "imagefolder":
            continue  # pretrained nets need RGB images: test_transfer checks those messages
        spec.load(name, [f"dataset='{dataset}'"])  # raises on any shape error


def test_dropout_location_is_r4_values():
    # The file's lr, epochs and batch are the embedded digits' (the main job); its description
    # gives the overrides that restore R4's regime on MNIST.
    study = spec.load("dropout_location", ["dataset=mnist", "epochs=10", "train.lr=0.001",
                                           "batch_size=100"])
    assert study.config["train.lr"] == 1e-3
    assert study.config["train.weight_decay"] == 5e-3
    assert study.config["model.dropout"] == 0.2
    assert study.config["readings"] == ["train.optimizer"]
    assert [(c["model.dropout_location"], c["train.optimizer"]) for c in study.cells()] == [
        (location, optimizer) for location in ("none", "before_pool", "before_conv", "before_fc")
        for optimizer in ("sgd", "momentum", "adam")]
    assert study.seeds() == [0, 1, 2]
    assert study.reference.rows[0] == ((("model.dropout_location", "before_pool"),), 93.17)
    assert "--epochs 10 --set train.lr=0.001 --set batch_size=100" in study.config["description"]
    digits = spec.load("dropout_location").config
    assert (digits["epochs"], digits["train.lr"], digits["batch_size"]) == (15, 0.05, 64)


def test_defaults_fill_unset_keys(write_study):
    study = load_text(write_study, TINY_STUDY)
    assert study.config["train.optimizer"] == "adam"
    assert study.config["model.activation"] == "relu"
    assert study.direction == "maximize"
    assert len(study.cells()) == 2


def test_unknown_key(write_study):
    path = write_study("epoch = 3\n" + TINY_STUDY)
    with pytest.raises(SpecError) as info:
        spec.load(str(path))
    assert str(info.value) == (
        f"{path}: unknown key 'epoch'; did you mean 'epochs'? (`hpo keys` lists every key)"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=0", "train.lr must be a number > 0, got 0"),
        ("train.lr=-0.1", "train.lr must be a number > 0, got -0.1"),
        ("model.dropout=1.0", "model.dropout must be a number >= 0 and < 1, got 1.0"),
        ("batch_size=0", "batch_size must be an integer >= 1 or 'full', got 0"),
        ("epochs='ten'", "epochs must be an integer >= 1, got 'ten'"),
        ("model.activation=swish", "model.activation must be one of 'relu', 'leaky_relu', "
         "'elu', 'gelu', 'sigmoid', 'tanh', got 'swish'"),
        ("model.bias=1", "model.bias must be true or false, got 1"),
    ],
)
def test_impossible_values_name_file_key_rule_value(write_study, override, message):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), [override])
    assert str(info.value) == f"{path}: {message}"


def test_architecture_that_cannot_fit_the_input(write_study):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), ["model.conv_layers=4", "model.channels=[4, 4, 4, 4]"])
    assert str(info.value) == (
        f"{path}: model: pooling after conv layer 4 needs at least 2x2, but the layer outputs "
        "1x1 for a 8x8 image; use fewer conv layers or less pooling"
    )


def test_set_overrides_with_types(write_study):
    study = load_text(write_study, TINY_STUDY,
                      ["epochs=5", "model.activation=tanh", "train.lr=0.05", "dataset=mnist"])
    assert study.config["epochs"] == 5
    assert study.config["model.activation"] == "tanh"
    assert study.config["train.lr"] == 0.05
    assert study.config["dataset"] == "mnist"


def test_set_unknown_key(write_study):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), ["model.activaton=tanh"])
    assert str(info.value) == (
        f"{path}: --set model.activaton: unknown key 'model.activaton'; did you mean "
        "'model.activation'? (`hpo keys` lists every key)"
    )


def test_set_without_equals(write_study):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), ["epochs"])
    assert str(info.value) == f"{path}: --set 'epochs' must look like key=value (e.g. epochs=5)"


def test_set_replaces_a_space_dimension(write_study):
    study = load_text(write_study, TINY_STUDY, ['space.model.dropout_location=["input"]'])
    assert study.cells() == [{"model.dropout_location": "input"}]


def test_space_values_are_validated(write_study):
    message = error_of(write_study, TINY_STUDY.replace('"none", "before_fc"', '"nowhere"'))
    assert message.endswith(
        "space.model.dropout_location must be one of 'none', 'input', 'before_conv', "
        "'after_conv', 'before_pool', 'before_fc', 'between_fc', got 'nowhere'"
    )


def test_grid_needs_finite_values(write_study):
    text = TINY_STUDY + '"train.lr" = { type = "float", low = 1e-4, high = 1e-1, log = true }\n'
    message = error_of(write_study, text)
    assert message.endswith(
        "space.train.lr: sampler 'grid' needs finite values, got a float range; list the "
        "values or use sampler = 'tpe'"
    )


def test_range_low_above_high(write_study):
    text = TINY_STUDY.replace('sampler = "grid"', 'sampler = "tpe"')
    text += '"train.lr" = { type = "float", low = 0.1, high = 0.01 }\n'
    assert error_of(write_study, text).endswith(
        "space.train.lr: `low <= high` must hold, got low=0.1, high=0.01"
    )


def test_conditional_parameters_drop_out_of_cells(write_study):
    text = TINY_STUDY.replace(
        '"model.dropout_location" = ["none", "before_fc"]',
        '"train.optimizer" = ["adam", "momentum"]\n'
        '"train.momentum" = { choices = [0.5, 0.9], when = { "train.optimizer" = "momentum" } }',
    )
    cells = load_text(write_study, text).cells()
    assert cells == [
        {"train.optimizer": "adam"},
        {"train.optimizer": "momentum", "train.momentum": 0.5},
        {"train.optimizer": "momentum", "train.momentum": 0.9},
    ]


def test_mlp_rejects_conv_only_dropout(write_study):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), ["model.family=mlp", 'space.model.dropout_location=["before_pool"]'])
    assert str(info.value) == (
        f"{path}: model.dropout_location 'before_pool' needs model.family = 'cnn'; an MLP "
        "takes 'none', 'input' or 'between_fc'"
    )


def test_reference_rows_must_name_space_keys(write_study):
    text = TINY_STUDY + (
        '\n[reference]\nsource = "R4"\nrows = [{ "train.lr" = 0.1, value = 9.8 }]\n'
    )
    assert error_of(write_study, text).endswith(
        "reference.rows[0]: 'train.lr' is not a key of [space]; use one of "
        "model.dropout_location"
    )


def test_not_toml(write_study):
    path = write_study("name = \n")
    with pytest.raises(SpecError) as info:
        spec.load(str(path))
    assert str(info.value).startswith(f"{path}: not valid TOML: ")


def test_unknown_study_name_suggests():
    with pytest.raises(SpecError) as info:
        spec.load("dropout_locaton")
    assert str(info.value) == (
        "unknown study 'dropout_locaton': did you mean 'dropout_location'? `hpo studies` "
        "lists the shipped studies, or give a path to a .toml file"
    )


def test_round_trip_through_dict():
    study = spec.load("optimizer")
    again = spec.from_dict(study.to_dict())
    assert again.config == study.config
    assert again.space == study.space
    assert again.reference == study.reference


def test_set_on_a_varied_key_is_refused(write_study):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), ["model.dropout_location=input"])
    assert str(info.value) == (
        f"{path}: --set model.dropout_location: this study varies model.dropout_location in "
        "its [space], so a fixed value would be ignored; replace the values with --set "
        "'space.model.dropout_location=[...]'"
    )


READINGS_STUDY = TINY_STUDY.replace(
    'sampler = "grid"\n', 'sampler = "grid"\nreadings = ["train.optimizer"]\n'
) + '"train.optimizer" = ["sgd", "momentum", "adam"]\n'

REFERENCES = """
[reference]
source = "R3 Table 3"
rows = [{ "train.optimizer" = "sgd", value = 62.0 }]

[[references]]
source = "R3 Table 1"
metric = "train_loss"
rows = [{ "train.optimizer" = "sgd", value = 1.59 }]

[[references]]
source = "R3 Table 2"
metric = "train_acc"
rows = [{ "train.optimizer" = "sgd", "model.dropout_location" = "none", value = 60.4 }]
"""


def test_readings_name_space_keys(write_study):
    study = load_text(write_study, READINGS_STUDY)
    assert study.config["readings"] == ["train.optimizer"]
    assert len(study.cells()) == 6  # each reading is a grid column with its own rows


def test_readings_default_is_empty(write_study):
    assert load_text(write_study, TINY_STUDY).config["readings"] == []


@pytest.mark.parametrize(
    ("readings", "message"),
    [
        ('["train.lr"]', "readings: 'train.lr' is not a key of [space]; a reading is a value "
         "of a varied key: use one of model.dropout_location, train.optimizer"),
        ('"train.optimizer"', "readings must be a list of dotted keys of [space], got "
         "'train.optimizer'"),
        ('["train.optimizer", "train.optimizer"]', "readings must not repeat a key, got "
         "['train.optimizer', 'train.optimizer']"),
    ],
)
def test_readings_errors_name_file_key_rule_value(write_study, readings, message):
    path = write_study(READINGS_STUDY.replace('["train.optimizer"]\n', readings + "\n", 1))
    with pytest.raises(SpecError) as info:
        spec.load(str(path))
    assert str(info.value) == f"{path}: {message}"


def test_references_hold_every_table_reference_first(write_study):
    study = load_text(write_study, READINGS_STUDY + REFERENCES)
    assert [(r.source, r.metric) for r in study.references] == [
        ("R3 Table 3", "test_acc"), ("R3 Table 1", "train_loss"), ("R3 Table 2", "train_acc")]
    assert study.reference is study.references[0]
    assert study.references[2].rows == (
        ((("model.dropout_location", "none"), ("train.optimizer", "sgd")), 60.4),)


def test_references_without_a_single_reference(write_study):
    text = READINGS_STUDY + "\n[[references]]" + REFERENCES.split("[[references]]", 1)[1]
    study = load_text(write_study, text)
    assert study.reference is not None and study.reference.metric == "train_loss"
    assert [r.metric for r in study.references] == ["train_loss", "train_acc"]
    assert [r.metric for r in study.more_references] == ["train_acc"]


def test_study_without_references():
    study = spec.load("seed_variance")
    assert study.reference is None and study.references == ()


def test_references_round_trip_through_dict(write_study):
    study = load_text(write_study, READINGS_STUDY + REFERENCES)
    again = spec.from_dict(study.to_dict())
    assert again.references == study.references
    assert again.config["readings"] == ["train.optimizer"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('source = "x"\nrows = [{ "train.optimizer" = "sgd", value = 1.0 }]',
         "references[0]: metric is required (each [[references]] table names its own, "
         "e.g. metric = 'train_loss')"),
        ('metric = "loss"\nrows = [{ "train.optimizer" = "sgd", value = 1.0 }]',
         "references[0].metric must be one of val_acc, val_loss, test_acc, test_loss, "
         "train_acc, train_loss, got 'loss'"),
        ('metric = "train_loss"\nrows = [{ "train.lr" = 0.1, value = 1.0 }]',
         "references[0].rows[0]: 'train.lr' is not a key of [space]; use one of "
         "model.dropout_location, train.optimizer"),
        ('metric = "train_loss"\nrows = [{ "train.optimizer" = "sgd", value = "1.0" }]',
         "references[0].rows[0].value must be a number, got '1.0'"),
        ('metric = "train_loss"\nrows = [{ "train.optimizer" = "lbfgs", value = 1.0 }]',
         "references[0].rows[0].train.optimizer must be one of 'sgd', 'momentum', 'nesterov', "
         "'adam', 'adamw', 'adamax', 'adadelta', 'adagrad', 'rmsprop', got 'lbfgs'"),
        ('metric = "train_loss"\nrows = []', "references[0].rows must be a non-empty list of "
         "tables"),
    ],
)
def test_references_errors_name_file_key_rule_value(write_study, table, message):
    path = write_study(READINGS_STUDY + "\n[[references]]\n" + table + "\n")
    with pytest.raises(SpecError) as info:
        spec.load(str(path))
    assert str(info.value) == f"{path}: {message}"


def test_references_must_be_an_array_of_tables(write_study):
    path = write_study(READINGS_STUDY.replace('readings = ["train.optimizer"]\n',
                                              'readings = ["train.optimizer"]\nreferences = 3\n'))
    with pytest.raises(SpecError) as info:
        spec.load(str(path))
    assert str(info.value) == (
        f"{path}: references must be an array of tables ([[references]]), got 3")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.loss_reduction=avg", "train.loss_reduction must be one of 'mean', 'sum', got "
         "'avg'"),
        ("train.loss_threshold_on=batch", "train.loss_threshold_on must be one of 'epoch', "
         "'minibatch', got 'batch'"),
        ("train.restore_best=1", "train.restore_best must be true or false, got 1"),
    ],
)
def test_new_train_keys_are_validated(write_study, override, message):
    path = write_study()
    with pytest.raises(SpecError) as info:
        spec.load(str(path), [override])
    assert str(info.value) == f"{path}: {message}"
