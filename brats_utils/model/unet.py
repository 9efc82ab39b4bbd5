"""The baseline's 2D U-Net and the fusion front ends of the three experiments (keras.ops)."""

from __future__ import annotations

import functools
from dataclasses import replace

import keras
from keras import layers, ops

from brats_utils.conventions import NUM_CLASSES, REGION_OUTPUTS
from brats_utils.model.experiments import Experiment, get_experiment
from brats_utils.model.settings import UNetSettings

__all__ = ["ChannelMean", "conv_block", "upsample_block", "build_model"]


@keras.saving.register_keras_serializable(package="brats_utils")
class ChannelMean(layers.Layer):
    """Mean fusion: ``(B, H, W, groups * C) -> (B, H, W, groups)``, group ``g`` the mean of
    channels ``g * C .. (g + 1) * C - 1`` (the modalities of one slice of a 2.5D stack)."""

    def __init__(self, groups: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, inputs):
        if self.groups == 1:
            return ops.mean(inputs, axis=-1, keepdims=True)
        shape = ops.shape(inputs)
        grouped = ops.reshape(inputs, (shape[0], shape[1], shape[2], self.groups, -1))
        return ops.mean(grouped, axis=-1)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def conv_block(x, filters: int, batch_norm: bool, name: str, activation: str = "relu"):
    """Two 3x3 convolutions, each followed by (optional batch norm and) ReLU (or leaky ReLU);
    layers ``<name>_conv1``, ``<name>_relu1``, ``<name>_conv2``, ...: one level of either path."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            kernel_initializer="he_normal",
            use_bias=not batch_norm,
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        if activation == "leaky_relu":
            x = layers.LeakyReLU(negative_slope=0.01, name=f"{name}_relu{i}")(x)
        else:
            x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def upsample_block(x, filters: int, mode: str, name: str):
    """Double the spatial size: 2x2 up-sampling + 2x2 conv (the baseline's) or a transposed conv."""
    if mode == "transpose":
        return layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", kernel_initializer="he_normal", name=name
        )(x)
    x = layers.UpSampling2D(size=2, name=f"{name}_upsample")(x)
    return layers.Conv2D(
        filters,
        2,
        padding="same",
        activation="relu",
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)


def _unet_body(inputs, settings: UNetSettings):
    depth, base_filters = settings.depth, settings.base_filters
    block = functools.partial(conv_block, batch_norm=settings.batch_norm,
                              activation=settings.activation)  # fmt: skip
    x = inputs
    skips = []
    for level in range(depth):
        x = block(x, base_filters * 2**level, name=f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(pool_size=2, name=f"down{level}_pool")(x)
    x = block(x, base_filters * 2**depth, name="bottleneck")
    if settings.dropout > 0:
        x = layers.Dropout(settings.dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = upsample_block(x, filters, settings.upsampling, name=f"up{level}")
        x = layers.Concatenate(axis=-1, name=f"up{level}_skip")([skips[level], x])
        x = block(x, filters, name=f"up{level}")
    if settings.head == "regions":  # WT, TC, ET: one sigmoid each, float32 (mixed precision)
        x = layers.Conv2D(REGION_OUTPUTS, 1, name="logits")(x)
        return layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    x = layers.Conv2D(NUM_CLASSES, 1, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="softmax")(x)


def build_model(
    experiment: str | Experiment,
    image_size: int = 128,
    settings: UNetSettings | None = None,
    *,
    context: int = 1,
    **overrides,
) -> keras.Model:
    """The uncompiled network of one experiment: fusion front end + U-Net.

    ``image_size`` must be a multiple of ``2**depth``; ``context``: slices per modality (2.5D).
    Input ``(B, image_size, image_size, context * len(experiment.channels))`` float32, slice by
    slice; output ``(B, image_size, image_size, 4)`` float32 probabilities (3 region channels
    with ``head="regions"``).
    """
    experiment = get_experiment(experiment)
    settings = replace(settings or UNetSettings(), **overrides)
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive integer, got {context!r}")
    if image_size % 2**settings.depth:
        raise ValueError(
            f"image_size must be a multiple of 2**depth = {2**settings.depth} for a U-Net of "
            f"depth {settings.depth}, got {image_size}"
        )
    channels = context * len(experiment.channels)
    inputs = keras.Input(shape=(image_size, image_size, channels), name="image")
    x = ChannelMean(context, name="mean_fusion")(inputs) if experiment.fusion == "mean" else inputs
    outputs = _unet_body(x, settings)
    return keras.Model(inputs, outputs, name=f"unet_{experiment.name}")
