"""Keras import: models made with keras (torch backend) and saved as .h5 and .keras predict what
Keras predicts, channels-last converted; what convdesigner cannot express is refused."""
import os

import numpy as np
import pytest
from interop_cases import predict

from engine.cli import main as cli
from engine.modelfile import load_model

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept")


def lenet5():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Rescaling(1 / 255.0, offset=-0.5),  # becomes the stored normalisation
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.AveragePooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="lenet5")


def functional():
    inputs = keras.Input((13, 13, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="leaky_relu")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)  # pads 1 each side
    y = layers.Conv2D(8, 1, activation="elu")(x)
    x = layers.Add()([x, y])
    z = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    x = layers.Concatenate()([x, z])
    x = layers.LeakyReLU(0.1)(x)
    x = layers.ELU(0.5)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.Dense(5, activation="tanh")(x)
    return keras.Model(inputs, x, name="functional")


def signal():
    return keras.Sequential([
        keras.Input((32, 2)), layers.Conv1D(4, 3, activation="sigmoid"), layers.MaxPooling1D(2),
        layers.AveragePooling1D(2, strides=1), layers.GlobalMaxPooling1D(),
        layers.Dense(3, activation="softplus")])


def volume():
    return keras.Sequential([
        keras.Input((8, 8, 8, 1)), layers.Conv3D(2, 3, padding="same"), layers.MaxPooling3D(2),
        layers.Conv3D(4, 2, dilation_rate=2), layers.Activation("relu"),
        layers.GlobalAveragePooling3D(), layers.Dense(2), layers.Softmax()])


def channels_first():
    return keras.Sequential([
        keras.Input((2, 10, 10)), layers.Conv2D(4, 3, data_format="channels_first"),
        layers.BatchNormalization(axis=1), layers.MaxPooling2D(data_format="channels_first"),
        layers.Flatten(data_format="channels_first"), layers.Dense(3)])


MODELS = {"lenet5": lenet5, "functional": functional, "signal": signal, "volume": volume,
          "channels_first": channels_first}


def randomized(factory):
    keras.utils.set_random_seed(0)
    model = factory()
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if i == len(layer.weights) - 1
                               else rng.normal(0, 0.5, w.shape)
                               for i, w in enumerate(layer.get_weights())])
    return model


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("name", MODELS)
def test_keras_model_imports_and_matches(name, suffix, tmp_path):
    model = randomized(MODELS[name])
    model.save(tmp_path / f"k{suffix}")
    assert cli(["import", str(tmp_path / f"k{suffix}"), "--out", str(tmp_path / "i.h5"),
                "--quiet"]) == 0
    x = np.random.default_rng(1).random((4, *model.input_shape[1:]), dtype=np.float32)
    x *= 255 if name == "lenet5" else 1
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    ours = x if name == "channels_first" else np.moveaxis(x, -1, 1)
    np.testing.assert_allclose(predict(tmp_path / "i.h5", ours, tmp_path), expected, atol=1e-4)
    assert load_model(tmp_path / "i.h5").graph.input_node.params["shape"] == list(ours.shape[1:])


@pytest.mark.parametrize("layer, message", [
    (layers.Conv2D(2, 3, strides=2, padding="same"), "padding: 'same' with strides [2, 2]"),
    (layers.AveragePooling2D(2, strides=1, padding="same"), "padding: 'same' averages"),
    (layers.Conv2D(2, 3, activation="gelu"), "activation: 'gelu'"),
    (layers.UpSampling2D(), "unsupported layer"),
])
def test_refused_in_one_line_naming_the_layer(layer, message, tmp_path, capsys):
    model = keras.Sequential([keras.Input((8, 8, 1)), layer])
    model.save(tmp_path / "k.keras")
    assert cli(["import", str(tmp_path / "k.keras"), "--out", str(tmp_path / "i.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"layer {layer.name!r}" in err and message in err


def test_rescaling_is_only_taken_as_the_input_normalisation(tmp_path, capsys):
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3),
                              layers.Rescaling(0.5, name="late")])
    model.save(tmp_path / "k.keras")
    assert cli(["import", str(tmp_path / "k.keras"), "--out", str(tmp_path / "i.h5")]) == 2
    assert "layer 'late' (Rescaling): convdesigner takes Rescaling only as the input " \
        "normalisation" in capsys.readouterr().err


def test_keras2_h5_layout(tmp_path):
    """A file laid out as Keras 2 (TensorFlow) wrote it: nested inbound_nodes lists,
    batch_input_shape, "kernel:0" weight names."""
    import json

    import h5py

    model = randomized(lambda: keras.Sequential([
        keras.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu"), layers.Flatten(),
        layers.Dense(4)]))
    conv, _, dense = model.layers
    config = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 6, 6, 2], "name": "input_1"}},
        {"class_name": "Conv2D", "name": "conv2d", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "conv2d", "filters": 3, "kernel_size": [3, 3], "strides": [1, 1],
                    "padding": "valid", "data_format": "channels_last", "activation": "relu",
                    "use_bias": True, "dilation_rate": [1, 1], "groups": 1}},
        {"class_name": "Flatten", "name": "flatten", "inbound_nodes": [[["conv2d", 0, 0, {}]]],
         "config": {"name": "flatten", "data_format": "channels_last"}},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["flatten", 0, 0, {}]]],
         "config": {"name": "dense", "units": 4, "activation": "linear", "use_bias": True}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    with h5py.File(tmp_path / "k2.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        weights = f.create_group("model_weights")
        for layer_name, layer in (("conv2d", conv), ("dense", dense)):
            group = weights.create_group(layer_name)
            names = [f"{layer_name}/{k}:0" for k in ("kernel", "bias")]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)
    assert cli(["import", str(tmp_path / "k2.h5"), "--out", str(tmp_path / "m.h5"),
                "--quiet"]) == 0
    x = np.random.default_rng(2).random((3, 6, 6, 2), dtype=np.float32)
    np.testing.assert_allclose(predict(tmp_path / "m.h5", np.moveaxis(x, -1, 1), tmp_path),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-4)
