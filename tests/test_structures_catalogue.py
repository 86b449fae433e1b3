"""Class sets: the papers' classes, their order, and that every entry is available offline."""
from __future__ import annotations

import pytest

from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES
from cryo_companion.structures.catalogue import class_set, substitution_table
from cryo_companion.structures.sources import find_structure

# SSN3D (Liu et al. 2018), Table 1, in the paper's order
LIU22_PAPER_IDS = ["1A1S", "1BXR", "1EQR", "1F1B", "1FNT", "1GYT", "1KPB", "1LB3", "1QO1",
                   "1VPX", "1VRG", "1W6T", "1YG6", "2AWB", "2BO9", "2BYU", "2GHO", "2GLS",
                   "2H12", "2IDB", "2REC", "3DY4"]


def test_che2019_label_order():
    cs = class_set("che2019")
    assert cs.class_names == ["ribosome", "membrane", "TRiC", "proteasome"]
    assert [c.source for c in cs] == ["map", "procedural", "map", "map"]
    assert cs.index("membrane") == 1


def test_shrec2020_is_table_1():
    cs = class_set("shrec2020")
    assert [c.paper_id for c in cs] == [c.pdb_id for c in SHREC2020_CLASSES]
    assert [c.mw_kda for c in cs] == [c.mw_kda for c in SHREC2020_CLASSES]
    # only 4d8q is substituted (by 4v94, the same complex)
    assert [(c.paper_id, c.entry) for c in cs if c.substituted] == [("4d8q", "4v94")]


def test_liu22_keeps_paper_ids_and_distinct_substitutes():
    cs = class_set("liu22")
    assert [c.paper_id for c in cs] == LIU22_PAPER_IDS
    assert len({c.entry for c in cs}) == 22
    table = substitution_table("liu22")
    assert len(table) == 22 and all(row["reason"] for row in table)


@pytest.mark.parametrize("name", ["che2019", "shrec2020", "liu22"])
def test_every_entry_is_available_with_its_source(name, structures_dir, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_OFFLINE", "1")
    for c in class_set(name):
        if c.source == "procedural":
            continue
        loc = find_structure(c.entry, kind=c.source)
        assert loc.kind == c.source, (name, c.entry)


def test_unknown_set():
    with pytest.raises(KeyError, match="che2019"):
        class_set("nope")
