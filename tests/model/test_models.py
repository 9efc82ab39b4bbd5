"""U-Net and fusion front ends: shapes, channel counts, mean fusion, saving, mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from brats_utils.model.experiments import EXPERIMENTS, Experiment
from brats_utils.model.unet import ChannelMean, build_model

SIZE = 32
TINY = {"base_filters": 4}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_model_shapes(name):
    experiment = EXPERIMENTS[name]
    model = build_model(name, SIZE, **TINY)
    assert model.input_shape == (None, SIZE, SIZE, len(experiment.channels))
    assert model.output_shape == (None, SIZE, SIZE, 4)
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, len(experiment.channels)))
    probs = model.predict(x.astype("float32"), verbose=0)
    assert probs.shape == (2, SIZE, SIZE, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # The first convolution sees the fused channels: 1 for mean fusion.
    fused = 1 if experiment.fusion == "mean" else len(experiment.channels)
    assert model.get_layer("down0_conv1").kernel.shape == (3, 3, fused, 4)


def test_mean4_equals_unet_on_channel_mean():
    mean4 = build_model("mean4", SIZE, **TINY)
    flair = Experiment(name="flair", title="", channels=("flair",), fusion="early", description="")
    unet = build_model(flair, SIZE, **TINY)
    unet.set_weights(mean4.get_weights())
    x = np.random.default_rng(1).normal(size=(2, SIZE, SIZE, 4)).astype("float32")
    expected = unet.predict(x.mean(-1, keepdims=True), verbose=0)
    np.testing.assert_allclose(mean4.predict(x, verbose=0), expected, atol=1e-6)


def test_seed_architecture_filters():
    model = build_model("early2", 128)
    filters = [model.get_layer(f"down{i}_conv1").filters for i in range(4)]
    assert filters == [32, 64, 128, 256]
    assert model.get_layer("bottleneck_conv2").filters == 512
    assert model.get_layer("bottleneck_dropout").rate == 0.2
    assert model.get_layer("up0_conv2").filters == 32
    assert model.get_layer("logits").kernel.shape == (1, 1, 32, 4)


def test_transpose_and_batch_norm_variants_build():
    model = build_model("early2", SIZE, upsampling="transpose", batch_norm=True, **TINY)
    assert model.output_shape == (None, SIZE, SIZE, 4)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 30}, "multiple of 2\\*\\*depth = 16"),
        ({"context": 0}, "context must be a positive integer"),
        ({"dropout": 1.0}, "dropout"),
        ({"upsampling": "bilinear"}, "upsampling"),
    ],
)
def test_invalid_unet_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model("early2", **kwargs)


def test_saved_model_reloads_with_fusion_layer(tmp_path):
    from brats_utils.training.keras_metrics import default_metrics
    from brats_utils.training.losses import get_loss

    model = build_model("mean4", SIZE, **TINY)
    model.compile(optimizer="adam", loss=get_loss("dice_ce"), metrics=default_metrics())
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.get_layer("mean_fusion"), ChannelMean)
    x = np.random.default_rng(2).normal(size=(1, SIZE, SIZE, 4)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_softmax_stays_float32_under_mixed_precision():
    from brats_utils.training.fit import precision_policy

    with precision_policy(True):
        model = build_model("early2", SIZE, **TINY)
    assert keras.config.dtype_policy().name == "float32"  # restored afterwards
    assert model.get_layer("down0_conv1").compute_dtype == "float16"
    x = np.zeros((1, SIZE, SIZE, 2), dtype="float32")
    assert keras.ops.convert_to_numpy(model(x)).dtype == np.float32


def test_losses_are_finite_and_dice_ce_adds_dice():
    from brats_utils.training.losses import (
        categorical_crossentropy,
        dice_ce,
        get_loss,
        soft_dice_loss,
    )

    rng = np.random.default_rng(4)
    truth = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 8, 8))]
    probs = rng.random((2, 8, 8, 4)).astype("float32")
    probs /= probs.sum(-1, keepdims=True)
    ce = keras.ops.convert_to_numpy(categorical_crossentropy(truth, probs))
    combined = keras.ops.convert_to_numpy(dice_ce(truth, probs))
    dice = float(soft_dice_loss(truth, probs))
    assert ce.shape == (2, 8, 8)
    np.testing.assert_allclose(ce, -np.log((truth * probs).sum(-1)), rtol=1e-5)
    np.testing.assert_allclose(combined.mean(), ce.mean() + dice, rtol=1e-5)
    assert float(soft_dice_loss(truth, truth)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("focal")


def test_the_model_is_built_exactly_as_its_settings_say():
    from brats_utils.model.settings import UNetSettings

    settings = UNetSettings(
        depth=3, base_filters=8, dropout=0.1, batch_norm=True, upsampling="transpose"
    )
    model = build_model("early2", 32, settings)
    names = [layer.name for layer in model.layers]
    assert sum(n.endswith("_pool") for n in names) == settings.depth
    assert model.get_layer("down0_conv1").filters == settings.base_filters
    assert model.get_layer("bottleneck_conv1").filters == settings.base_filters * 2**settings.depth
    assert model.get_layer("bottleneck_dropout").rate == settings.dropout
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert isinstance(model.get_layer("up0"), keras.layers.Conv2DTranspose)
    plain = build_model("early2", 32, depth=2, base_filters=4, dropout=0.0)
    assert "bottleneck_dropout" not in [layer.name for layer in plain.layers]
    assert isinstance(plain.get_layer("up0_upsample"), keras.layers.UpSampling2D)
