"""The train/validation/test split: sizes, determinism and the CSV file."""

from __future__ import annotations

import os

import pytest

from brats_utils.data.split import (
    SPLITS,
    cases_in,
    count_splits,
    load_split,
    make_split,
    save_split,
    split_sizes,
)
from brats_utils.errors import BratsError

IDS_2021 = [f"BraTS2021_{i:05d}" for i in range(1251)]


def test_brats2021_sized_data_gets_exactly_1012_126_113():
    split = make_split(IDS_2021)
    assert count_splits(split) == {"train": 1012, "validation": 126, "test": 113}
    parts = [set(cases_in(split, part)) for part in SPLITS]
    assert set.union(*parts) == set(IDS_2021)
    assert sum(len(p) for p in parts) == len(IDS_2021)  # disjoint
    assert list(split) == sorted(IDS_2021)


def test_split_depends_only_on_sorted_ids_and_seed():
    shuffled = IDS_2021[::-1]
    assert make_split(shuffled, seed=7) == make_split(IDS_2021, seed=7)
    assert make_split(IDS_2021, seed=7) != make_split(IDS_2021, seed=8)
    # not simply the first cases in id order
    assert cases_in(make_split(IDS_2021), "train") != IDS_2021[:1012]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10, 16, 24, 100, 1000])
def test_small_data_sets_keep_the_proportions_and_a_case_in_each_part(n):
    sizes = split_sizes(n)
    assert sum(sizes) == n
    if n >= 3:
        assert min(sizes) >= 1
    else:
        assert sizes[0] == n
    for size, count in zip(sizes, (1012, 126, 113), strict=True):
        assert abs(size - n * count / 1251) < 1.5
    split = make_split([f"c{i:04d}" for i in range(n)])
    assert tuple(count_splits(split).values()) == sizes


def test_split_sizes_follow_other_counts_exactly():
    assert split_sizes(100, (70, 15, 15)) == (70, 15, 15)
    assert split_sizes(10, (1, 0, 1)) == (5, 0, 5)
    with pytest.raises(ValueError, match="counts"):
        split_sizes(10, (0, 0, 0))
    with pytest.raises(ValueError, match="counts"):
        split_sizes(10, (8, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"case_ids": []}, "no case ids"),
        ({"case_ids": ["a", "b", "a"]}, r"repeated: \['a'\]"),
        ({"case_ids": ["a", ""]}, "non-empty"),
        ({"case_ids": ["a", "b"], "seed": -1}, "seed"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_split(**kwargs)


def test_cases_in_rejects_an_unknown_part():
    with pytest.raises(ValueError, match="validation"):
        cases_in({"a": "train"}, "val")


def test_save_then_load_round_trips_atomically(tmp_path):
    split = make_split([f"case{i}" for i in range(20)], seed=3)
    path = save_split(split, tmp_path / "out" / "split.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "case,split"
    assert lines[1:] == [f"{c},{split[c]}" for c in sorted(split)]
    assert load_split(path) == split
    assert os.listdir(tmp_path / "out") == ["split.csv"]
    with pytest.raises(ValueError, match="parts must be one of"):
        save_split({"a": "val"}, path)
    assert load_split(path) == split  # a refused write leaves the file as it was


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "expected the header 'case,split'"),
        ("id,part\na,train\n", "found 'id,part'"),
        ("case,split\na,train\nb,holdout\n", "line 3: unknown split 'holdout'"),
        ("case,split\na,train\na,test\n", "line 3: case a is listed twice"),
        ("case,split\na,train,extra\n", "line 2: expected 'case,split'"),
        ("case,split\n,train\n", "line 2"),
        ("case,split\n", "no cases listed"),
    ],
)
def test_malformed_split_files_raise_with_file_and_line(tmp_path, text, match):
    path = tmp_path / "split.csv"
    path.write_text(text)
    with pytest.raises(BratsError, match=match) as info:
        load_split(path)
    assert str(path) in str(info.value)


def test_load_split_tolerates_spaces_blank_lines_and_a_bom(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("\ufeffcase,split\n\n a , validation\nb,test\n", encoding="utf-8")
    assert load_split(path) == {"a": "validation", "b": "test"}


def test_missing_split_file_says_how_to_make_one(tmp_path):
    with pytest.raises(BratsError, match="brats split"):
        load_split(tmp_path / "split.csv")
