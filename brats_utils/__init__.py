"""brats-unet: 2D U-Nets for BraTS brain tumour segmentation."""

__version__ = "0.1.0"
