"""Particle lists: formats, axis order (x, y, z lists vs z, y, x arrays), 0/1-based round trips."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.papers.shrec2020.particles import (
    KNOWN_CLASS_IDS,
    ParticleListError,
    parse_star,
    parse_text_list,
    particle_list,
    read_particle_list,
    resolve_class,
    write_particle_list,
)

PL = particle_list(["1bxn", "4d8q", "1s3x"], [[1, 2, 3], [10.5, 0, 7.25], [0, 0, 0]],
                   angles_deg=np.array([[10, 20, 30], [0, 0, 0], [-5, 90, 180.5]]))


def test_class_names_and_ids_resolve_case_insensitively():
    assert resolve_class("1BXN") == "1bxn"
    assert resolve_class("Rubisco") == "1bxn"
    assert resolve_class("tric/cct") == "4d8q"
    with pytest.raises(ParticleListError, match="unknown class 'ribosome'.*1s3x, 3qm1"):
        resolve_class("ribosome")


@pytest.mark.parametrize("fmt,suffix", [("text", ".txt"), ("csv", ".csv"), ("star", ".star")])
@pytest.mark.parametrize("origin", [0, 1])
def test_round_trip_every_format_and_origin(tmp_path, fmt, suffix, origin):
    path = write_particle_list(tmp_path / f"p{suffix}", PL, origin=origin)
    back = read_particle_list(path, origin=origin)
    assert back.classes == PL.classes
    np.testing.assert_array_equal(back.xyz, PL.xyz)
    if fmt != "star":
        np.testing.assert_array_equal(back.angles_deg, PL.angles_deg)


def test_one_based_file_holds_coordinates_plus_one(tmp_path):
    path = write_particle_list(tmp_path / "p.txt", PL, origin=1)
    first = path.read_text().splitlines()[0].split()
    assert first[:4] == ["1bxn", "2", "3", "4"]
    # Read with the wrong origin, every coordinate is off by exactly one voxel.
    np.testing.assert_array_equal(read_particle_list(path, origin=0).xyz, PL.xyz + 1)


def test_benchmark_layout_and_axis_order():
    # particle_locations.txt of SHREC 2020: pdb x y z + three ZXZ angles
    pl = parse_text_list("# comment\n\n4d8q 100 200 30 12.0 45.5 90\n1bxn 5 6 7 0 0 0\n")
    assert pl.classes == ("4d8q", "1bxn")
    np.testing.assert_array_equal(pl.xyz[0], [100, 200, 30])
    np.testing.assert_array_equal(pl.zyx[0], [30, 200, 100])  # array order for volume[z, y, x]
    np.testing.assert_array_equal(pl.angles_deg[0], [12.0, 45.5, 90])
    assert pl.lines.tolist() == [3, 4]
    vol = np.zeros((40, 250, 120))
    vol[tuple(pl.zyx[0].astype(int))] = 1
    assert vol[30, 200, 100] == 1


def test_csv_with_header_in_any_column_order():
    pl = parse_text_list("z,y,x,pdb_id,score\n3,2,1,Rubisco,0.9\n")
    assert pl.classes == ("1bxn",)
    np.testing.assert_array_equal(pl.xyz, [[1, 2, 3]])


def test_duplicate_lines_are_kept():
    assert len(parse_text_list("1bxn 1 2 3\n1bxn 1 2 3\n")) == 2


def test_empty_list():
    pl = parse_text_list("# nothing\n")
    assert len(pl) == 0 and pl.xyz.shape == (0, 3)


@pytest.mark.parametrize("text,match", [
    ("1bxn 1 2 3\n1bxn 1 2\n", "line 2: expected at least 4 columns"),
    ("1bxn 1 2 3\n1bxn 1 two 3\n", "line 2: non-numeric y coordinate 'two'"),
    ("1bxn 1 2 nan\n", "line 1: z coordinate 'nan' is not finite"),
    ("1bxn 1 2 3\n\nfoo 1 2 3\n", "line 3: unknown class 'foo'; known classes.*4d8q"),
    ("x,y,z,score\n1,2,3,4\n", "line 1: header .* no class column"),
])
def test_bad_text_names_the_line(text, match):
    with pytest.raises(ParticleListError, match=match):
        parse_text_list(text, source="pred.txt")


STAR = """
data_optics
loop_
_rlnOpticsGroup #1
1

data_particles

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnCoordinateZ #3
_rlnClassNumber #4
_rlnAutopickFigureOfMerit #5
11.0 12.0 13.0 1 0.5
21.0 22.0 23.0 2 0.7
"""


def test_star_with_numeric_classes_needs_a_map():
    with pytest.raises(ParticleListError, match="p.star line 15: .*_rlnClassNumber.*class_map"):
        parse_star(STAR, source="p.star")
    pl = parse_star(STAR, class_map={"1": "1s3x", "2": "Rubisco"}, origin=1)
    assert pl.classes == ("1s3x", "1bxn")
    np.testing.assert_array_equal(pl.xyz, [[10, 11, 12], [20, 21, 22]])


def test_star_errors():
    with pytest.raises(ParticleListError, match="no STAR loop_ with _rlnCoordinateX"):
        parse_star("data_x\nloop_\n_rlnFoo #1\n1\n")
    no_class = "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n1 2 3\n"
    with pytest.raises(ParticleListError, match="no class column"):
        parse_star(no_class)
    short = "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_shrecClass\n1 2 3\n"
    with pytest.raises(ParticleListError, match="line 7: expected 4 fields"):
        parse_star(short)


def test_missing_file_and_bad_origin(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_particle_list(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="origin must be 0"):
        parse_text_list("1bxn 1 2 3", origin=2)


def test_known_ids_are_table1_in_weight_order():
    assert KNOWN_CLASS_IDS[0] == "1s3x" and KNOWN_CLASS_IDS[-1] == "4d8q"
    assert len(KNOWN_CLASS_IDS) == 12


def test_star_is_written_with_starfile_and_read_back_both_ways(tmp_path):
    import pandas as pd
    import starfile

    path = write_particle_list(tmp_path / "p.star", PL)
    df = starfile.read(path)                                  # the field's reader
    assert list(df.columns) == ["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ",
                                "shrecClass"]
    np.testing.assert_allclose(df[["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]],
                               PL.xyz)
    assert "Created by" not in path.read_text()                # same seed, same bytes
    # a STAR file written by starfile itself (RELION layout, optics block first)
    other = tmp_path / "relion.star"
    starfile.write({"optics": pd.DataFrame({"rlnOpticsGroup": [1]}),
                    "particles": pd.DataFrame({"rlnCoordinateX": [5.5], "rlnCoordinateY": [6.0],
                                               "rlnCoordinateZ": [7.0],
                                               "rlnClassName": ["Rubisco"]})}, other)
    pl = read_particle_list(other)
    assert pl.classes == ("1bxn",) and pl.xyz.tolist() == [[5.5, 6.0, 7.0]]


def test_csv_written_with_ids_units_and_named_angles(tmp_path):
    path = write_particle_list(tmp_path / "p.csv", PL, angle_columns=("phi_deg", "theta_deg",
                                                                      "psi_deg"))
    rows = path.read_text().splitlines()
    assert rows[0] == "id,class,x_vox,y_vox,z_vox,phi_deg,theta_deg,psi_deg"
    assert rows[2] == "2,4d8q,10.5,0,7.25,0,0,0"
    back = read_particle_list(path)
    np.testing.assert_array_equal(back.xyz, PL.xyz)
    np.testing.assert_array_equal(back.angles_deg, PL.angles_deg)
    with pytest.raises(ValueError, match="not a triple the reader knows"):
        write_particle_list(tmp_path / "q.csv", PL, angle_columns=("a", "b", "c"))


def test_classes_outside_table1_only_where_asked():
    text = "id,class,x_vox,y_vox,z_vox\n1,membrane,1,2,3\n2,4v94,4,5,6\n3,rubisco,7,8,9\n"
    with pytest.raises(ParticleListError, match="line 2: unknown class 'membrane'"):
        parse_text_list(text)
    truth = parse_text_list(text, any_class=True)
    assert truth.classes == ("membrane", "4v94", "1bxn")
    pred = parse_text_list("4V94 1 1 1\nMembrane 2 2 2\n", extra_classes=set(truth.classes))
    assert pred.classes == ("4v94", "membrane")
    with pytest.raises(ParticleListError, match="or a class of the truth list: 4v94, membrane"):
        parse_text_list("ribosome 1 1 1\n", extra_classes=set(truth.classes))


def test_scene_truth_list_puts_membranes_on_their_membrane():
    from types import SimpleNamespace

    from cryo_companion.papers.shrec2020.particles import particle_list_from_scene

    occ = np.zeros((8, 10, 12), dtype=np.int32)
    occ[2:4, 3:5, 4:6] = 1                               # a complex
    zz, yy, xx = np.mgrid[:8, :10, :12]
    shell = np.abs(np.sqrt((zz - 4) ** 2 + (yy - 5) ** 2 + (xx - 6) ** 2) - 3.5) < 0.6
    occ[shell & (occ == 0)] = 2                          # a vesicle around (6, 5, 4)
    scene = SimpleNamespace(particles=[
        {"class_name": "1bxn", "kind": "particle", "centre_xyz_vox": [9.0, 7.0, 5.0],
         "euler_zyz_deg": [10.0, 20.0, 30.0]},
        {"class_name": "membrane", "kind": "vesicle", "centre_xyz_vox": [12.0, 10.0, 8.0],
         "euler_zyz_deg": [0.0, 0.0, 0.0]}])
    pl = particle_list_from_scene(scene, occ, bin_factor=2)
    assert pl.classes == ("1bxn", "membrane")
    np.testing.assert_allclose(pl.xyz[0], [4.25, 3.25, 2.25])  # (c + 0.5) / 2 - 0.5
    x, y, z = pl.xyz[1].astype(int)
    assert occ[z, y, x] == 2                                  # on the shell, not in the lumen
    np.testing.assert_array_equal(pl.angles_deg[0], [10, 20, 30])
