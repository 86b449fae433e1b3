"""SSN3D's cited tables, recipe, splits and data-set specifications (papers/ssn3d)."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.models.ssn3d import PAPER_PARAMETER_COUNTS, ssn3d
from cryo_companion.papers.ssn3d import datasets, paper_tables, splits, training
from cryo_companion.structures.catalogue import class_set


def test_table3_holds_the_22_classes_of_table1_with_1kp8_for_1kpb() -> None:
    t1 = [paper_tables.TABLE3_ID_OF_TABLE1.get(i, i) for i in paper_tables.TABLE1_IDS]
    assert len(paper_tables.TABLE3) == 22 and sorted(t1) == sorted(paper_tables.TABLE3)
    assert [c.paper_id for c in class_set("liu22")] == list(paper_tables.TABLE1_IDS)
    # the paper's generalisation claim (4.3): every held-out class >= 96 % and >= 72 %
    assert min(a for a, _ in paper_tables.TABLE3.values()) >= 96
    assert min(m for _, m in paper_tables.TABLE3.values()) >= 72


def test_table2_capacities_are_the_networks() -> None:
    caps = {m: c for m, _, _, c, _ in paper_tables.TABLE2 if c is not None}
    assert caps == {"SSN3D-v1": PAPER_PARAMETER_COUNTS["v1"],
                    "SSN3D-v2": PAPER_PARAMETER_COUNTS["v2"],
                    "SSN3D-ED": PAPER_PARAMETER_COUNTS["ed"]}
    assert caps["SSN3D-ED"] == ssn3d("ed").n_parameters()


def test_the_xu_row_is_not_a_two_class_miou() -> None:
    xu = paper_tables.TABLE2[0]
    assert xu[0] == "Xu[20]"
    # even a target filling half of every box leaves a two-class mIoU of >= 0.41
    bound = paper_tables.min_two_class_miou(xu[1] / 100, 0.5)
    assert bound == pytest.approx((1 - (1 - 0.9187) / 0.5) / 2)
    assert bound > xu[2] / 100
    # the CNN rows are consistent with it
    for _, acc, miou, _, _ in paper_tables.TABLE2[1:]:
        assert paper_tables.min_two_class_miou(acc / 100, 0.2) <= miou / 100
    with pytest.raises(ValueError, match="max_target_fraction"):
        paper_tables.min_two_class_miou(0.9, 1.0)


def test_recipe_and_the_released_codes_deviations() -> None:
    p, r = training.PAPER, training.RELEASED_CODE
    assert (p.lr, p.betas, p.lr_decay_per_iteration, p.batch_size, p.max_epochs, p.patience) == \
        (1e-3, (0.9, 0.99), 1e-8, 128, 200, 10)
    assert (r.betas[1], r.max_epochs, r.patience) == (0.999, 150, 20)
    assert p.validation_fraction == r.validation_fraction == 0.1
    assert len(training.DEVIATIONS) == 6 and p.to_dict()["betas"] == [0.9, 0.99]


def test_random_split_has_the_papers_sizes() -> None:
    s = splits.random_split(3380, seed=0)
    assert (len(s["test"]), len(s["train"]) + len(s["validation"])) == (338, 3042)
    assert len(s["validation"]) == 304
    allx = np.concatenate(list(s.values()))
    assert np.array_equal(np.sort(allx), np.arange(3380))
    t = splits.random_split(3380, seed=0)
    assert all(np.array_equal(s[k], t[k]) for k in s)
    assert not np.array_equal(s["test"], splits.random_split(3380, seed=1)["test"])
    with pytest.raises(ValueError, match="at least 3"):
        splits.random_split(2, seed=0)


def test_leave_one_out_never_trains_on_the_held_out_class() -> None:
    labels = np.repeat(np.arange(22), 10)
    s = splits.leave_one_out_split(labels, held_out=5, seed=0)
    assert np.array_equal(s["test"], np.flatnonzero(labels == 5))
    assert not np.isin(np.concatenate([s["train"], s["validation"]]), s["test"]).any()
    assert len(s["validation"]) == 21 and len(s["train"]) == 189
    with pytest.raises(ValueError, match="class 30 has no subtomogram"):
        splits.leave_one_out_split(labels, held_out=30, seed=0)


def test_dataset_specs_are_the_papers() -> None:
    for name, snr in (("A", 0.5), ("B", 0.06), ("C", 0.01)):
        assert datasets.TARGET_SNR[name] == snr
        cfg = datasets.dataset_config(name, "paper")
        assert cfg.tomogram_shape == (300, 600, 600) and cfg.n_complexes == 10_000
        assert (cfg.box, cfg.voxel_size_A, cfg.tilt_min_deg, cfg.tilt_max_deg) == \
            (40, 13.68, -60.0, 60.0)
        assert cfg.n_subtomograms == 3380 and cfg.class_set == "liu22"
        assert cfg.snr_reference == datasets.GROEL_STAND_IN == "4v94"
        assert cfg.mask_level == datasets.MASK_LEVEL == 0.2
    a, c = datasets.dataset_config("A"), datasets.dataset_config("C")
    assert a.seed == c.seed and a.noise_seed != c.noise_seed   # one scene, three doses
    assert datasets.dataset_config("B", "smoke", dose_e_A2=12.0).total_dose_e_A2 == 12.0
    with pytest.raises(ValueError, match="unknown SSN3D data set 'D'; valid: A, B, C"):
        datasets.dataset_config("D")
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        datasets.dataset_config("A", "huge")


def test_count_analysis() -> None:
    c = datasets.count_analysis()
    assert c["paper_fraction"] == pytest.approx(0.338)
    assert c["dsmnet_fraction"] == pytest.approx(0.3205)
    # uniform placement keeps about 0.874 (x, y) x 0.906 (z) of the complexes
    assert c["uniform_fraction"] == pytest.approx((561 / 600) ** 2 * 261 / 288)
    assert 0.37 < c["cube_fraction"] < 0.39 and c["uniform_boxes"] > 2 * 3380
