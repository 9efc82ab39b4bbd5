"""The improvements study (``brats study``): k-fold cross-validation of named configurations."""
