"""Numbers from predictions: slice metrics and BraTS region metrics per case."""
