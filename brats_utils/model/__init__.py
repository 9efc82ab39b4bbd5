"""The fusion experiments, the U-Net's settings and the network."""
