"""The slice cache at full scale: its size on disk and how fast the loader reads it from disk.

For each worker count the loader (``SliceDataset``, batches read by a thread pool as
``model.fit`` does) reads one shuffled epoch of training slices, or ``--slices`` of them, and
the script prints slices/s and MB/s actually read from disk (``/proc/self/io``). ``--cold``
drops the page cache before each measurement (root); ``--memory-limit-gb`` confines the
process, page cache included, to a memory cgroup (root, cgroup v1 or v2), so that a cache
smaller than the machine's RAM is still read as one bigger than RAM would be.

Usage (the full-scale rehearsal, docs/gpu.md)::

    python benchmarks/bench_cache.py CACHE_DIR --split DATA_DIR/split.csv --cold \\
        --memory-limit-gb 4 --workers 1 4 8

The last line printed is one JSON object with every figure and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: Slices/s that a 30 s epoch of the baseline (1012 cases x 100 slices) needs.
TARGET_SLICES_PER_S = 101_200 / 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path, help="slice cache (brats preprocess --out)")
    parser.add_argument("--split", type=Path, help="split.csv: read its train cases (default all)")
    parser.add_argument("--channels", nargs="+", default=["flair", "t1ce"], help="default early2's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--slices", type=int, default=0, help="slices per measurement (0: epoch)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache first (root)")
    parser.add_argument("--max-open-maps", type=int, nargs="+", default=[0], help="0: default")
    parser.add_argument("--memory-limit-gb", type=float, default=0.0, help="memory cgroup (root)")
    return parser.parse_args()


def limit_memory(gigabytes: float) -> str:
    """Move this process into a new memory cgroup of ``gigabytes`` (page cache included)."""
    limit, name = str(int(gigabytes * 2**30)), f"bench_cache_{os.getpid()}"
    for folder, limit_file in [
        (Path("/sys/fs/cgroup/memory") / name, "memory.limit_in_bytes"),  # cgroup v1
        (Path("/sys/fs/cgroup") / name, "memory.max"),  # cgroup v2
    ]:
        try:
            folder.mkdir()
            (folder / limit_file).write_text(limit)
            (folder / "cgroup.procs").write_text(str(os.getpid()))
            return str(folder)
        except OSError:
            continue
    raise SystemExit("--memory-limit-gb needs root and a writable memory cgroup")


def disk_read_bytes() -> int:
    """Bytes this process read from disk (0 where /proc/self/io is missing, e.g. gVisor)."""
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("read_bytes:")), 0)


def drop_page_cache() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def read_epoch(dataset, workers: int, max_slices: int) -> tuple[int, float, int]:
    """(slices, seconds, bytes read from disk) for the first batches of one epoch."""
    n_batches = len(dataset)
    if max_slices:
        n_batches = min(n_batches, -(-max_slices // dataset.batch_size))
    before, started, slices = disk_read_bytes(), time.perf_counter(), 0
    with ThreadPoolExecutor(workers) as pool:
        for x, _ in pool.map(dataset.__getitem__, range(n_batches)):
            slices += len(x)
    return slices, time.perf_counter() - started, disk_read_bytes() - before


def main() -> dict:
    args = parse_args()
    if args.memory_limit_gb:
        cgroup = limit_memory(args.memory_limit_gb)
    import brats_utils.preprocessing.cache as cache_module
    from brats_utils.data.split import cases_in, load_split
    from brats_utils.preprocessing.cache import open_cache
    from brats_utils.training.loader import SliceDataset

    cache = open_cache(args.cache)
    case_ids = list(cache.case_ids)
    if args.split:
        case_ids = sorted(set(case_ids) & set(cases_in(load_split(args.split), "train")))
    files = [p for p in (args.cache / "cases").iterdir() if p.suffix == ".npy"]
    cache_bytes = sum(p.stat().st_size for p in files)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    result: dict = {
        "cache_gb": round(cache_bytes / 1e9, 2),
        "cases": len(cache.case_ids),
        "cache_mb_per_case": round(cache_bytes / 1e6 / len(cache.case_ids), 2),
        "settings": cache.settings.to_dict(),
        "ram_gb": round(ram / 1e9, 1),
        "memory_limit_gb": args.memory_limit_gb or None,
        "training_cases": len(case_ids),
        "channels": args.channels,
        "batch_size": args.batch_size,
        "cold": args.cold,
        "target_slices_per_s": round(TARGET_SLICES_PER_S),
        "loader": [],
    }
    if args.memory_limit_gb:
        result["cgroup"] = cgroup
    print(json.dumps({k: v for k, v in result.items() if k != "loader"}), flush=True)
    default_maps = cache_module.MAX_OPEN_MAPS
    for max_maps in args.max_open_maps:
        cache_module.MAX_OPEN_MAPS = max_maps or default_maps
        for workers in args.workers:
            cache = open_cache(args.cache)  # no memory map left open from the last measurement
            dropped = drop_page_cache() if args.cold else False
            dataset = SliceDataset(cache, case_ids, args.channels, args.batch_size, seed=workers)
            slices, seconds, read = read_epoch(dataset, workers, args.slices)
            row = {
                "workers": workers,
                "max_open_maps": cache_module.MAX_OPEN_MAPS,
                "page_cache_dropped": dropped,
                "slices": slices,
                "seconds": round(seconds, 1),
                "slices_per_s": round(slices / seconds),
                "disk_mb_per_s": round(read / 1e6 / seconds),
                "disk_kb_per_slice": round(read / 1e3 / slices, 1),
            }
            result["loader"].append(row)
            print(json.dumps(row), flush=True)
            del dataset, cache  # its memory maps would keep their pages in the page cache
    if args.memory_limit_gb:  # back to the parent group, then remove ours
        Path(cgroup).parent.joinpath("cgroup.procs").write_text(str(os.getpid()))
        Path(cgroup).rmdir()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
