"""PDB and mmCIF readers: the shipped models, format equivalence, alt-locs, filters, bad files."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from cryo_companion.structures._elements import MASS_DA, guess_element
from cryo_companion.structures.atoms import AtomFileError, read_atoms, read_mmcif, read_pdb


def _atom(serial, name, resname, chain, resseq, x, y, z, *, occ=1.0, alt=" ", element="",
          record="ATOM"):
    """One PDB ATOM/HETATM line in the fixed columns of the PDB format."""
    return (f"{record:<6s}{serial:5d} {name:<4s}{alt}{resname:>3s} {chain}{resseq:4d}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}{occ:6.2f}{20.0:6.2f}          {element:>2s}")


def _write(path: Path, lines, *, gz=False) -> Path:
    text = "\n".join(lines) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _to_mmcif(atoms_lines) -> str:
    """mmCIF text with the same atoms as PDB lines (names quoted where they contain ')."""
    rows = ["data_test", "#", "loop_"]
    tags = ["group_PDB", "id", "type_symbol", "label_atom_id", "label_alt_id", "label_comp_id",
            "label_asym_id", "auth_seq_id", "Cartn_x", "Cartn_y", "Cartn_z", "occupancy",
            "pdbx_PDB_model_num"]
    rows += [f"_atom_site.{t}" for t in tags]
    for i, line in enumerate(atoms_lines, 1):
        name = line[12:16].strip()
        qname = f'"{name}"' if "'" in name else name
        alt = line[16].strip() or "."
        rows.append(" ".join([line[:6].strip(), str(i), line[76:78].strip() or "C", qname, alt,
                              line[17:20].strip(), line[21], line[22:26].strip(),
                              line[30:38].strip(), line[38:46].strip(), line[46:54].strip(),
                              line[54:60].strip(), "1"]))
    rows.append("#")
    return "\n".join(rows) + "\n"


def test_every_shipped_model_reads(structures_dir):
    for path in sorted((structures_dir / "pdb").glob("*.pdb.gz")):
        atoms = read_atoms(path)
        assert len(atoms) > 1000, path.name
        assert np.isfinite(atoms.xyz_A).all()
        assert set(atoms.element) <= set(MASS_DA), (path.name, set(atoms.element) - set(MASS_DA))
        # proteins and RNA: about one atom per 13-16 Da
        assert 11 < atoms.mass_da.mean() < 17, path.name


def test_shipped_masses_match_composition(structures_dir):
    # 3j9i (T. acidophilum 20S proteasome, 28 subunits of ~22 kDa): about 0.6 MDa of heavy atoms
    atoms = read_atoms(structures_dir / "pdb" / "3j9i.pdb.gz")
    assert 560 < atoms.total_mass_kda < 660
    assert atoms.center_of_mass_A().shape == (3,)


def test_pdb_and_mmcif_give_the_same_atoms(structures_dir, tmp_path):
    # the 30S subunit has RNA atom names with primes (O5'), which mmCIF must quote
    src = structures_dir / "pdb" / "4v4r_30S.pdb.gz"
    lines = [ln for ln in gzip.decompress(src.read_bytes()).decode().splitlines()
             if ln.startswith(("ATOM  ", "HETATM"))][:3000]
    pdb = _write(tmp_path / "m.pdb", lines)
    cif = tmp_path / "m.cif.gz"
    cif.write_bytes(gzip.compress(_to_mmcif(lines).encode()))
    a, b = read_pdb(pdb), read_mmcif(cif)
    c = read_atoms(cif)  # format detected from the content
    assert len(a) == len(b) == len(c) == 3000
    np.testing.assert_allclose(a.xyz_A, b.xyz_A)
    assert list(a.element) == list(b.element)
    np.testing.assert_allclose(a.mass_da, c.mass_da)


def test_plain_and_gzip_are_the_same(tmp_path):
    lines = [_atom(1, " CA ", "ALA", "A", 1, 1, 2, 3, element="C"),
             _atom(2, " N  ", "ALA", "A", 1, 2, 2, 3, element="N")]
    a = read_atoms(_write(tmp_path / "a.pdb", lines))
    b = read_atoms(_write(tmp_path / "a.pdb.gz", lines, gz=True))
    np.testing.assert_array_equal(a.xyz_A, b.xyz_A)


def test_alternate_locations_counted_once(tmp_path):
    lines = [_atom(1, " CA ", "THR", "A", 5, 0, 0, 0, occ=0.3, alt="A", element="C"),
             _atom(2, " CA ", "THR", "A", 5, 1, 0, 0, occ=0.7, alt="B", element="C"),
             _atom(3, " CB ", "THR", "A", 5, 0, 1, 0, occ=0.5, alt="A", element="C"),
             _atom(4, " CB ", "THR", "A", 5, 0, 2, 0, occ=0.5, alt="B", element="C"),
             _atom(5, " N  ", "THR", "A", 5, 0, 0, 5, element="N")]
    atoms = read_atoms(_write(tmp_path / "alt.pdb", lines))
    assert len(atoms) == 3
    xyz = {tuple(p) for p in atoms.xyz_A}
    assert (1.0, 0.0, 0.0) in xyz  # CA: the conformer of higher occupancy
    assert (0.0, 1.0, 0.0) in xyz  # CB: a tie keeps the first
    cif = tmp_path / "alt.cif"
    cif.write_text(_to_mmcif(lines))
    assert {tuple(p) for p in read_atoms(cif).xyz_A} == xyz


def test_shipped_altlocs_not_double_counted(structures_dir):
    # 3qm1 has residues in two conformations (occupancies 0.12 / 0.88)
    raw = gzip.decompress((structures_dir / "pdb" / "3qm1.pdb.gz").read_bytes()).decode()
    recs = [ln for ln in raw.splitlines() if ln.startswith(("ATOM  ", "HETATM"))]
    n_alt = sum(ln[16] not in " A" for ln in recs)
    assert n_alt > 0
    atoms = read_atoms(structures_dir / "pdb" / "3qm1.pdb.gz", waters=True, hydrogens=True)
    assert len(atoms) == len(recs) - n_alt


def test_hydrogens_and_waters_are_options(tmp_path):
    lines = [_atom(1, " CA ", "ALA", "A", 1, 0, 0, 0, element="C"),
             _atom(2, " HA ", "ALA", "A", 1, 1, 0, 0, element="H"),
             _atom(3, " O  ", "HOH", "W", 9, 5, 5, 5, element="O", record="HETATM"),
             _atom(4, "ZN  ", "ZN", "B", 2, 9, 9, 9, element="ZN", record="HETATM")]
    path = _write(tmp_path / "hw.pdb", lines)
    assert sorted(read_atoms(path).element) == ["C", "ZN"]
    assert sorted(read_atoms(path, hydrogens=True).element) == ["C", "H", "ZN"]
    assert sorted(read_atoms(path, waters=True).element) == ["C", "O", "ZN"]
    assert sorted(read_atoms(path, hetero=False).element) == ["C"]
    with pytest.raises(TypeError, match="unknown options"):
        read_pdb(path, solvent=True)


def test_first_model_only(tmp_path):
    lines = ["MODEL        1", _atom(1, " CA ", "ALA", "A", 1, 0, 0, 0, element="C"), "ENDMDL",
             "MODEL        2", _atom(1, " CA ", "ALA", "A", 1, 9, 9, 9, element="C"), "ENDMDL"]
    atoms = read_atoms(_write(tmp_path / "nmr.pdb", lines))
    assert len(atoms) == 1 and atoms.xyz_A[0, 0] == 0.0


def test_elements_guessed_without_element_columns(tmp_path):
    assert guess_element(" CA ", "ALA") == "C"   # C-alpha
    assert guess_element("CA  ", "CA") == "CA"   # calcium ion
    assert guess_element("FE  ", "HEM") == "FE"
    assert guess_element(" OG1", "THR") == "O"
    line = _atom(1, " CA ", "ALA", "A", 1, 0, 0, 0)[:66]  # no columns 67-78
    assert list(read_atoms(_write(tmp_path / "noel.pdb", [line])).element) == ["C"]


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"   \n\n", "no ATOM"),
    (b"HEADER    NOTHING HERE\nEND\n", "no ATOM"),
])
def test_files_without_atoms_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.pdb"
    path.write_bytes(content)
    with pytest.raises(AtomFileError, match=match):
        read_atoms(path)


def test_truncated_pdb_is_refused(tmp_path):
    lines = [_atom(1, " CA ", "ALA", "A", 1, 0, 0, 0, element="C"),
             _atom(2, " N  ", "ALA", "A", 1, 1, 1, 1, element="N")[:40]]
    with pytest.raises(AtomFileError, match="line 2: truncated ATOM"):
        read_atoms(_write(tmp_path / "cut.pdb", lines))


def test_truncated_gzip_is_refused(structures_dir, tmp_path):
    raw = (structures_dir / "pdb" / "1s3x.pdb.gz").read_bytes()
    path = tmp_path / "cut.pdb.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AtomFileError, match="truncated or corrupt gzip"):
        read_atoms(path)


def test_truncated_mmcif_is_refused(tmp_path):
    lines = [_atom(1, " CA ", "ALA", "A", 1, 0, 0, 0, element="C"),
             _atom(2, " N  ", "ALA", "A", 1, 1, 1, 1, element="N")]
    text = _to_mmcif(lines)
    cut = text[: text.rindex("1.00") - 3]  # last row loses its final values
    path = tmp_path / "cut.cif"
    path.write_text(cut)
    with pytest.raises(AtomFileError, match="truncated _atom_site row"):
        read_atoms(path)
    path.write_text("data_x\n#\n_cell.length_a 10\n")
    with pytest.raises(AtomFileError, match="no _atom_site loop"):
        read_mmcif(path)


def test_missing_file(tmp_path):
    with pytest.raises(AtomFileError, match="no such file"):
        read_atoms(tmp_path / "absent.pdb")
