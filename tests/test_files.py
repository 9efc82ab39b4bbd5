"""The atomic writers of brats_utils.files: JSON, CSV and .npy land whole or not at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from helpers import REPO_ROOT, child_pids, is_running, kill_group, snapshot, wait_until

from brats_utils.errors import BratsError
from brats_utils.files import read_json, write_csv, write_json, write_npy


def test_write_json_converts_numpy_and_paths_and_reads_back(tmp_path):
    path = write_json(
        tmp_path / "a" / "t.json", {"x": np.float32(0.5), "p": tmp_path, "v": np.arange(2)}
    )
    assert path.read_text().endswith("}\n")
    assert read_json(path) == {"x": 0.5, "p": str(tmp_path), "v": [0, 1]}
    compact = write_json(tmp_path / "c.json", {"a": [1, 2]}, indent=None)
    assert compact.read_text() == '{"a": [1, 2]}'


def test_write_json_keeps_the_old_file_when_the_data_cannot_be_written(tmp_path):
    path = write_json(tmp_path / "t.json", {"ok": 1})
    with pytest.raises(TypeError, match="cannot write object"):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["t.json"]  # no temporary file left behind


def test_read_json_names_the_file(tmp_path):
    with pytest.raises(BratsError, match="run state not found"):
        read_json(tmp_path / "missing.json", "run state")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BratsError, match="is not readable JSON"):
        read_json(tmp_path / "bad.json")


def test_write_csv_from_frames_and_records(tmp_path):
    assert write_csv(pd.DataFrame({"x": [1]}), tmp_path / "f.csv").read_text() == "x\n1\n"
    records = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": 0.75}]
    text = write_csv(records, tmp_path / "r.csv").read_text()
    assert text == "epoch,loss,val_loss\n1,0.5,\n2,0.25,0.75\n"
    indexed = pd.DataFrame({"mean": [0.5]}, index=["dice_WT"])
    assert write_csv(indexed, tmp_path / "i.csv", index=True).read_text() == ",mean\ndice_WT,0.5\n"


def test_write_csv_orders_record_columns_by_first_appearance(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(50):
        records = [
            {k: 1 for k in rng.permutation(list("abcdef"))[: rng.integers(1, 5)]} for _ in range(4)
        ]
        first_seen = list(dict.fromkeys(k for record in records for k in record))
        header = write_csv(records, tmp_path / "r.csv").read_text().splitlines()[0]
        assert header == ",".join(first_seen)


def test_write_npy_is_memory_mappable(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = write_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(np.load(path, mmap_mode="r"), array)


def test_stale_temporaries_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    from brats_utils.files import atomic_path, remove_stale_temporaries

    keep = write_json(tmp_path / "a.json", {"a": 1})
    (tmp_path / ".hidden").write_text("not ours")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "b.nii.gz", ".nii.gz") as tmp:
        tmp.write_bytes(b"half")
        (tmp_path / ".b.nii.gz.kill9.tmp.nii.gz").write_bytes(tmp.read_bytes())  # as after -9
        raise KeyboardInterrupt
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "a.json"]
    assert keep.is_file() and remove_stale_temporaries(tmp_path / "missing") == 0


_POOL_SCRIPT = """
import sys, time
from functools import partial
from pathlib import Path
from brats_utils.files import in_workers

def work(i, out):  # writes its file every 20 ms for 8 s
    for k in range(400):
        Path(out, f"{i}.txt").write_text(str(k))
        time.sleep(0.02)

if __name__ == "__main__":
    list(in_workers(partial(work, out=sys.argv[1]), range(4), 2))
"""


def test_pool_workers_end_when_their_parent_is_killed(tmp_path):
    script, out = tmp_path / "pool.py", tmp_path / "out"
    script.write_text(textwrap.dedent(_POOL_SCRIPT))
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen([sys.executable, str(script), str(out)], env=env,
                              start_new_session=True)  # fmt: skip
    try:
        assert wait_until(lambda: len(list(out.iterdir())) == 2, timeout=30)  # both at work
        workers = child_pids(parent.pid)
        assert len(workers) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert wait_until(lambda: not any(map(is_running, workers)), timeout=3), workers
        before = snapshot(out)
        wait_until(lambda: False, timeout=0.5)
        assert snapshot(out) == before  # nothing goes on writing
        assert sorted(before) == ["0.txt", "1.txt"]  # the queued tasks never started
    finally:
        kill_group(parent)


def test_a_write_that_fails_names_the_file_and_the_reason(tmp_path, monkeypatch):
    with pytest.raises(BratsError, match=r"cannot write /sys/brats-unet/a\.json: "):
        write_json("/sys/brats-unet/a.json", {})  # not writable, even by root
    write_json(tmp_path / "a.json", {"old": 1})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_text", full)
    with pytest.raises(BratsError, match=f"cannot write {tmp_path / 'a.json'}: No space left"):
        write_json(tmp_path / "a.json", {"new": 2})
    assert read_json(tmp_path / "a.json") == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
