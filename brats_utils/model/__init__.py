"""The three fusion experiments (experiments, no Keras), the U-Net's settings (no Keras) and the
network (unet, keras.ops only).

See docs/ARCHITECTURE.md for what this subpackage owns and may import.
"""
