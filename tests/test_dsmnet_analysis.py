"""DSM-Net's inputs, scores, table assembly, claim checks, runs and unseen-structure analysis."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion import rotation
from cryo_companion.models.dsmnet import VARIANTS
from cryo_companion.papers.dsmnet import evaluate, paper_tables, tables, training, unseen
from cryo_companion.simulate.crowded import CrowdedSubtomograms


def _set(n: int = 6, d: int = 8, seed: int = 0) -> CrowdedSubtomograms:
    rng = np.random.default_rng(seed)
    dens = np.zeros((n, d, d, d), np.float32)
    dens[:, 2:6, 2:6, 2:6] = 0.81
    return CrowdedSubtomograms(
        rng.normal(3.0, 2.0, (n, d, d, d)).astype(np.float32), np.arange(n) % 3, dens > 0,
        ["a", "b", "c"], 13.68, {}, density=dens, euler_zyz_deg=np.zeros((n, 3)),
        offset_xyz_vox=np.zeros((n, 3)), centre_xyz_vox=np.zeros((n, 3)),
        tomogram_index=np.zeros(n, np.int64))


def test_standardize_and_recovery_target() -> None:
    x = evaluate.standardize(torch.randn(3, 4, 4, 4) * 5 + 2)
    assert torch.allclose(x.flatten(1).mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.flatten(1).std(1, unbiased=False), torch.ones(3), atol=1e-5)
    assert torch.equal(evaluate.standardize(np.ones((1, 4, 4, 4))), torch.zeros(1, 4, 4, 4))
    assert torch.allclose(evaluate.recovery_target(np.full((1, 2, 2, 2), 0.405)),
                          torch.full((1, 2, 2, 2), 0.5))
    with pytest.raises(ValueError, match=r"\(N, D, D, D\)"):
        evaluate.standardize(np.zeros((4, 4, 4)))


def test_prepare() -> None:
    data = _set()
    b = evaluate.prepare(data, [1, 4])
    assert b["x"].shape == (2, 8, 8, 8) and b["labels"].tolist() == [1, 1]
    assert b["masks"].dtype == torch.bool and float(b["density"].max()) == pytest.approx(1.0)
    relabelled = evaluate.prepare(data, [0, 2], labels=np.array([5, 6, 7, 8, 9, 10]))
    assert relabelled["labels"].tolist() == [5, 7]
    with pytest.raises(ValueError, match="one entry per subtomogram"):
        evaluate.prepare(data, [0], labels=[0, 1])


def test_score_by_hand() -> None:
    masks = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    masks[:, 1:3, 1:3, 1:3] = True
    seg = torch.stack([(~masks).float(), masks.float()], 1)          # perfect segmentation
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])         # predicts 0, 2
    dens = torch.rand(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    s = evaluate.score({"class_logits": logits, "segmentation": seg, "recovery": dens},
                       labels=[0, 1], masks=masks, density=dens)
    assert s["object_accuracy"] == 0.5
    assert s["pixel_accuracy"] == 1.0 and s["miou"] == 1.0 and s["target_iou"] == 1.0
    assert s["recovery_mse"] == 0.0 and s["recovery_correlation"] == pytest.approx(1.0)
    # half the target voxels missed in one box: target IoU 0.5 there, 1 in the other
    pred = masks.clone()
    pred[0, 1] = False
    s2 = evaluate.score({"segmentation": torch.stack([(~pred).float(), pred.float()], 1)},
                        masks=masks)
    assert s2["target_iou"] == pytest.approx(0.75)
    assert s2["pixel_accuracy"] == pytest.approx(1 - 4 / 128)
    assert set(s2) == {"pixel_accuracy", "miou", "target_iou", "background_iou"}
    with pytest.raises(ValueError, match="need the true labels"):
        evaluate.score({"class_logits": logits})
    with pytest.raises(ValueError, match="no head output"):
        evaluate.score({"features": logits})


def test_converged() -> None:
    ln22 = math.log(22)
    assert not evaluate.converged([ln22, ln22 * 0.99, ln22 * 0.95], 22)
    assert evaluate.converged([ln22, 2.0, 1.0], 22)
    assert not evaluate.converged([float("nan")], 22)
    with pytest.raises(ValueError, match="no training losses"):
        evaluate.converged([], 22)


def test_summarize() -> None:
    s = tables.summarize([{"miou": 0.8, "object_accuracy": 0.5, "converged": True},
                          {"miou": 0.9, "object_accuracy": 0.7, "converged": False}])
    assert s["miou"]["mean"] == pytest.approx(0.85) and s["miou"]["values"] == [0.8, 0.9]
    assert s["miou"]["std"] == pytest.approx(math.sqrt(0.005)) and s["miou"]["n"] == 2
    assert s["converged"] == [True, False]
    assert "converged" not in tables.summarize([{"miou": 0.8}])
    with pytest.raises(ValueError, match="no seeds"):
        tables.summarize([])


def _ours(**rows: dict[str, list[float]]) -> dict:
    return {k: {m: {**tables.summarize([{m: x} for x in v])[m]} for m, v in r.items()}
            for k, r in rows.items()}


def test_table_rows_put_ours_beside_the_papers() -> None:
    data = {"table2": _ours(dsmnet={"miou": [0.8, 0.82, 0.81]}),
            "table3": {"B": _ours(seg={"miou": [0.7]})}}
    rows = tables.table_rows(data, "table2")
    assert [r["key"] for r in rows] == [r.key for r in paper_tables.TABLE2]
    dsm = rows[-1]
    assert dsm["miou"]["paper"] == pytest.approx(0.89) and dsm["miou"]["ours"]["n"] == 3
    assert dsm["object_accuracy"]["ours"] is None                          # not produced
    assert rows[0]["object_accuracy"]["paper"] == paper_tables.FAILED
    assert rows[0]["miou"]["paper"] is None                                 # "-"
    assert tables.table_rows(data, "table3", "B")[1]["miou"]["ours"]["mean"] == 0.7
    assert all(r["miou"]["ours"] is None for r in tables.table_rows(None, "table4"))
    # Table 4's 1:10 rows are Table 2's runs
    d4 = {"table2": _ours(**{"cls+seg": {"miou": [0.88]}})}
    assert tables.table_rows(d4, "table4")[2]["miou"]["ours"]["mean"] == 0.88
    with pytest.raises(ValueError, match="unknown table"):
        tables.table_rows(data, "table3", "D")


def test_the_papers_tables_support_its_claims() -> None:
    checks = tables.check_claims(None)
    assert len(checks) == len(tables.CLAIMS) == 8
    assert all(c.paper == "holds" for c in checks), [c.id for c in checks if c.paper != "holds"]
    assert all(c.ours == "not produced yet" for c in checks)


def test_claims_checked_on_our_numbers() -> None:
    t2 = _ours(seg={"miou": [0.80, 0.81, 0.82]}, ssn3d_ed={"miou": [0.70, 0.71, 0.72]})
    t2["cls"] = {"converged": [True, True, True]}
    t2["dsrf3d_v2"] = {"converged": [False, True, False]}
    by_id = {c.id: c for c in tables.check_claims({"table2": t2})}
    assert by_id["seg_above_ssn3d"].ours == "holds beyond the seeds' spread"
    assert "+0.1000" in by_id["seg_above_ssn3d"].detail
    assert by_id["resnet_converges"].ours == "does not hold"       # one DSRF3D-v2 run converged
    t2["dsrf3d_v2"] = {"converged": [False, False, False]}
    assert {c.id: c for c in tables.check_claims({"table2": t2})}["resnet_converges"].ours \
        == "holds"
    close = _ours(seg={"miou": [0.80, 0.79, 0.81]}, ssn3d_ed={"miou": [0.79, 0.81, 0.80]})
    assert {c.id: c for c in tables.check_claims({"table2": close})}["seg_above_ssn3d"].ours \
        == "does not hold"
    c = {"table3": {"C": _ours(dsmnet={"miou": [0.60]}, seg={"miou": [0.615]})}}
    assert {k.id: k for k in tables.check_claims(c)}["dataset_c_segmentation"].ours == "holds"


def test_runs_cover_every_row_with_the_papers_settings() -> None:
    names = {r.name for r in training.RUNS}
    assert {f"table2/{r.key}" for r in paper_tables.TABLE2} <= names
    for ds, rows in paper_tables.TABLE3.items():
        assert {f"table3/{ds}/{r.key}" for r in rows} <= names
    t4 = {f"table4/{r.key}" for r in paper_tables.TABLE4 if r.key not in tables.SAME_RUNS}
    assert t4 <= names
    for r in training.RUNS:
        assert r.recipe == training.PAPER_RECIPE
        if r.table == "table2" or (r.table == "table3" and r.row == "dsmnet"):
            assert len(r.seeds) >= 3, r.name
        if r.network == "dsmnet":
            assert r.variant in VARIANTS and set(r.loss_weights) == set(VARIANTS[r.variant])
        assert r.n_classes == (2 if r.dataset == "C" else 21 if r.held_out else 22)
    assert training.run_spec("table2/dsmnet").loss_weights == {"cls": 1.0, "seg": 10.0,
                                                              "rec": 1.0}
    assert training.run_spec("table2/cls+rec").loss_weights == {"cls": 1.0, "rec": 10.0}
    assert training.run_spec("table4/cls+seg_1:100").loss_weights["seg"] == 100.0
    assert training.run_spec("unseen/dsmnet_21").held_out == unseen.GROEL
    r = training.PAPER_RECIPE
    assert (r.lr, r.betas, r.batch_size, r.max_epochs, r.patience) == (1e-3, (0.9, 0.99), 64,
                                                                      100, 15)
    assert training.run_spec("table3/C/dsmnet").to_dict()["recipe"]["betas"] == [0.9, 0.99]
    with pytest.raises(KeyError, match="no runs called"):
        training.run_spec("table5/x")


def test_discovery_finds_the_held_out_blob() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (5, 12))
    labels = np.repeat(np.arange(5), 20)
    feats = centres[labels] + rng.normal(0, 0.3, (100, 12))
    r = unseen.discover(feats, labels, held_out=3, seed=0, k=5, embed=False)
    e = r["enriched"]
    assert e["purity"] == 1.0 and e["recall"] == 1.0 and e["enrichment"] == pytest.approx(5.0)
    assert len(r["clusters"]) == 100 and "tsne" not in r
    assert unseen.groel_label([f"c{i}" for i in range(6)] + ["1KPB GroEL"]) == 6
    with pytest.raises(ValueError, match="is not among the classes"):
        unseen.groel_label(["a"])


def test_recovered_structure_and_its_fsc() -> None:
    # one asymmetric structure seen in 6 poses; the "recovery" is the truth blurred by noise
    D, n = 16, 6
    zz, yy, xx = np.indices((D, D, D)) - (D - 1) / 2
    ref = (np.exp(-(xx ** 2 + yy ** 2 + zz ** 2) / 6) + 0.7 * np.exp(
        -((xx - 3) ** 2 + yy ** 2 + zz ** 2) / 2)).astype(np.float32)
    g = torch.Generator().manual_seed(1)
    R = rotation.random_rotation_matrices(n, g)
    eul = np.stack([np.rad2deg(torch.stack(rotation.matrix_to_euler_zyz(R[i:i + 1])).numpy()[:, 0])
                    for i in range(n)])
    off = np.zeros((n, 3))
    shift = torch.full((n, 3), 0.5)                  # centre on voxel D // 2, as boxes are cut
    truth = rotation.rotate_volumes(torch.as_tensor(ref).expand(n, D, D, D).contiguous(), R,
                                    shift)
    rec = truth + 0.05 * torch.randn(n, D, D, D, generator=g)
    avg_r, avg_t = unseen.recovered_structure(rec, truth, eul, off)
    c = np.corrcoef(avg_t.flatten().numpy(), ref.flatten())[0, 1]
    assert c > 0.97                                   # the poses undo the rotations
    f = unseen.structure_fsc(avg_r, avg_t, 13.68)
    assert set(f["resolution"]) == {"fsc_0_5", "fsc_0_143"}
    assert f["curve"]["fsc"][1] > 0.99 and f["paper_score"] == 5.0
    r05 = f["resolution"]["fsc_0_5"]["resolution_A"]
    assert 2 * 13.68 <= r05 <= D * 13.68
    same = unseen.structure_fsc(avg_t, avg_t, 13.68)["resolution"]["fsc_0_143"]
    assert same["crossed"] == "never" and same["resolution_nm"] == pytest.approx(2.736)
    with pytest.raises(ValueError, match="must both be"):
        unseen.recovered_structure(rec[:2], truth, eul, off)


def test_every_run_builds_its_network() -> None:
    counts = training.parameter_counts()
    assert counts["table2/dsmnet"] == 2_174_905 and counts["table2/dsrf3d_v2"] == 18_315_574
    assert counts["table2/ssn3d_ed"] == 895_746 and counts["unseen/dsmnet_21"] == 2_173_880
    assert counts["table2/cls+seg"] == counts["table4/cls+seg_1:100"]
    x = torch.randn(2, 16, 16, 16)
    for name in ("table2/ssn3d_ed", "table2/dsrf3d_v2", "table3/C/dsmnet"):
        spec = training.run_spec(name)
        net = training.build_network(spec, 0, box=16).eval()
        out = evaluate.head_outputs(net(x))
        if "class_logits" in out:
            assert out["class_logits"].shape == (2, spec.n_classes)
        if spec.network == "ssn3d_ed":
            assert set(out) == {"segmentation"} and out["segmentation"].shape == (2, 2, 16, 16, 16)
    with pytest.raises(ValueError, match="segmentation logits"):
        evaluate.head_outputs(torch.zeros(2, 3))
