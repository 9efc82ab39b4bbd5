"""The models, losses and metrics run on the JAX and PyTorch backends too (keras.ops only, no
tf.*), and each experiment's model saves and loads there; data parallelism on two simulated
JAX devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import require_backend

SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    import keras
    import numpy as np
    from brats_utils.model.experiments import EXPERIMENTS
    from brats_utils.training.keras_metrics import CONFUSION_METRICS, ConfusionMatrixMetric
    from brats_utils.evaluation.slice_metrics import confusion_matrix, label_metrics
    from brats_utils.model.unet import build_model
    from brats_utils.training.fit import compile_model, distribution

    backend = sys.argv[1]
    assert keras.backend.backend() == backend, keras.backend.backend()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    result = {}
    for name, experiment in EXPERIMENTS.items():
        x = rng.normal(size=(2, 32, 32, len(experiment.channels))).astype("float32")
        y = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 32, 32))]
        # data parallelism on one device takes the same path (jax and tensorflow only)
        with distribution(name == "early2" and backend == "jax", batch_size=2):
            model = compile_model(build_model(name, 32, base_filters=4, depth=2), "dice_ce")
            logs = model.train_on_batch(x, y, return_dict=True)
            shape = keras.ops.shape(model(x))
        # saved and loaded as `brats predict` loads a run's model (the fusion layer too)
        model.save(f"{sys.argv[2]}/{name}.keras")
        reloaded = keras.saving.load_model(f"{sys.argv[2]}/{name}.keras", compile=False)
        same = np.allclose(model.predict(x, verbose=0), reloaded.predict(x, verbose=0), atol=1e-6)
        result[name] = {"loss": float(logs["loss"]), "shape": list(shape), "reloads": bool(same)}
    truth = rng.integers(0, 4, (3, 8, 8))
    probs = rng.random((3, 8, 8, 4)).astype("float32")
    reference = label_metrics(confusion_matrix(truth, probs.argmax(-1)))
    for metric_name in ("mean_iou", "dice", "specificity", "dice_edema"):
        metric = ConfusionMatrixMetric(metric_name)
        metric.update_state(np.eye(4, dtype="float32")[truth], probs)
        result[metric_name] = [float(metric.result()), reference[metric_name]]
    print(json.dumps(result))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_experiments_train_one_step_on_the_backend(backend, backend_env, tmp_path):
    require_backend(backend)
    env = {**os.environ, **backend_env, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, backend, str(tmp_path)], env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("early4", "mean4", "early2"):
        assert result[name]["shape"] == [2, 32, 32, 4], name
        assert 0.0 < result[name]["loss"] < 1e3, name  # finite
        assert result[name]["reloads"], name  # the reloaded model predicts the same
    for metric_name in ("mean_iou", "dice", "specificity", "dice_edema"):
        keras_value, numpy_value = result[metric_name]
        assert keras_value == pytest.approx(numpy_value, abs=1e-6), metric_name


DATA_PARALLEL = textwrap.dedent(
    """
    import json
    import keras
    import numpy as np
    from brats_utils.model.unet import build_model
    from brats_utils.training.fit import compile_model, distribution

    devices = keras.distribution.list_devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 2)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, (8, 32, 32))]
    out = {"devices": len(devices)}
    for parallel in (False, True):
        keras.utils.set_random_seed(0)
        with distribution(parallel, batch_size=8) as n:
            model = compile_model(build_model("early2", 32, base_filters=4, depth=2, dropout=0.0),
                                  "dice_ce")
            if parallel:  # the batch really is split over the devices
                layout = keras.distribution.distribution().get_data_layout((8, 32, 32, 2))
                sharded = keras.distribution.distribute_tensor(x, layout)
                out["shards"] = [list(s.data.shape) for s in sharded.addressable_shards]
            loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
            weights = [np.asarray(w) for w in model.get_weights()]
        out[str(parallel)] = {"n": n, "loss": loss, "weights": [float(w.sum()) for w in weights]}
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_data_parallel_on_two_simulated_jax_devices_matches_one_device():
    require_backend("jax")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    done = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    assert result["False"]["n"] == 1 and result["True"]["n"] == 2
    assert result["shards"] == [[4, 32, 32, 2], [4, 32, 32, 2]]  # half the batch each
    single, parallel = result["False"], result["True"]
    assert parallel["loss"] == pytest.approx(single["loss"], rel=1e-5)
    # one Adam step from the same weights: the updated weights agree too
    assert parallel["weights"] == pytest.approx(single["weights"], rel=1e-4, abs=1e-4)
