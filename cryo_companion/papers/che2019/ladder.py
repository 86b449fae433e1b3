"""The reality-gap ladder: test sets of the test domain with realism added one factor at a time.

Issue #14, item 4. The Table I networks, trained on the simplified simulator, fail on the
held-out test domain (:mod:`cryo_companion.papers.che2019.test_domain`). The ladder finds where
the gap opens: every rung is the test domain's own generator
(:func:`~cryo_companion.papers.che2019.test_domain.generate_sets`) with a set of switches, and
each rung adds one factor to the one before it:

1. ``ideal``: isolated particles (one target per box, nothing else in the scene) and no imaging
   at all: the scene's potential on the tomogram grid;
2. ``projection``: projected at every tilt of the series and reconstructed by weighted
   back-projection (the missing wedge and WBP's artefacts; no CTF, detector or noise);
3. ``ctf``: the per-tilt CTF of the domain (defocus gradient across the tilted field and through
   the ice, amplitude contrast, dose-dependent B-factor) and the detector MTF;
4. ``shot_noise``: Poisson shot noise of the domain's dose (the domain's full imaging);
5. ``copies``: the other copies of the target classes at the domain's density (the generator's
   copies per wanted target, at the ladder scale's targets per tomogram and area), placed at
   random without overlap: a box may now hold more than its target (the condition of the
   issue's "isolated particles" measurement, finding (d));
6. ``crowders``: the non-target complexes at the domain's volume fraction, placed at random;
7. ``contact``: placements in contact with a neighbour at the domain's contact fraction;
8. ``membranes``: the domain's vesicles and sheets and membrane targets: the full domain.

Rungs 1-4 image the *same* scenes with the same defocus errors, and their boxes are cut at the
same places: they differ only in imaging (paired). Rungs 5-8 each have their own scenes (drawn
from the same seed, so each tomogram keeps its defocus). Membrane targets exist only on rung 8,
so the ladder's comparable headline is the accuracy on the three particle classes.

The ladder's sizes (:data:`LADDER_SCALES`) are its own, smaller than the frozen domain's paper
scale, with the domain's class proportions and densities; everything physical is the domain's,
except where a scale says otherwise (``reduced``: no oversampling of the scene, i.e. the scene is
built, projected and detected at the tomogram's 13.68 Å instead of 6.84 Å). Rungs are cached on
disk in the project's data-set format (:func:`ensure_ladder`).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cryo_companion.dataset import (
    SubtomogramSet,
    default_data_dir,
    load_subtomograms,
    save_subtomograms,
)
from cryo_companion.papers.che2019.test_domain import (
    DEFAULT_DOMAIN,
    FULL_REALISM,
    ISOLATED,
    SceneRealism,
    domain_config,
    domain_hash,
    generate_sets,
)

__all__ = ["LADDER_SCALES", "RUNGS", "Rung", "describe", "ensure_ladder", "ladder_hash",
           "ladder_sizes", "make_ladder", "rung"]


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: a set of switches on the full domain's generator.

    Attributes
    ----------
    name : str
        Short name (also the cache folder's).
    label : str
        Short label for plots.
    adds : str
        The one factor this rung adds to the one before it.
    realism : SceneRealism
        What the scenes hold.
    mode : str
        The imaging mode (:data:`~cryo_companion.simulate.tomogram.IMAGING_MODES`).
    """

    name: str
    label: str
    adds: str
    realism: SceneRealism
    mode: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description."""
        return {"name": self.name, "label": self.label, "adds": self.adds,
                "realism": self.realism.to_dict(), "mode": self.mode}


_COPIES = SceneRealism(crowders=False, contact=False, membranes=False)
_CROWDERS = SceneRealism(crowders=True, contact=False, membranes=False)
_CONTACT = SceneRealism(crowders=True, contact=True, membranes=False)

#: The rungs, from the training simulator's world (one particle, no imaging) to the test domain.
RUNGS: tuple[Rung, ...] = (
    Rung("ideal", "isolated,\nideal imaging",
         "isolated particles (one per box, nothing else in the scene), no imaging: the "
         "potential on the tomogram grid", ISOLATED, "ideal"),
    Rung("projection", "+ projection\n+ WBP",
         "projection at every tilt (-50..+70 deg) and weighted back-projection: the missing "
         "wedge and the reconstruction's artefacts", ISOLATED, "projection"),
    Rung("ctf", "+ CTF\nper tilt",
         "the CTF of each tilt and 20-nm slab (defocus gradient, amplitude contrast, dose "
         "B-factor) and the detector MTF", ISOLATED, "ctf"),
    Rung("shot_noise", "+ shot\nnoise",
         "Poisson shot noise of the dose: the domain's full imaging", ISOLATED, "full"),
    Rung("copies", "+ target\ncopies",
         "the other target copies at the domain's density, placed at random: a box may hold "
         "more than its target", _COPIES, "full"),
    Rung("crowders", "+ crowders",
         "non-target complexes at the domain's volume fraction, placed at random", _CROWDERS,
         "full"),
    Rung("contact", "+ contact\npacking",
         "placements in contact with a neighbour at the domain's contact fraction", _CONTACT,
         "full"),
    Rung("membranes", "+ membranes\n(full domain)",
         "vesicles, sheets and membrane targets: the full test domain", FULL_REALISM, "full"),
)

#: Sizes of the ladder. ``smoke``: a pipeline check (a few of each class). ``reduced``: what a
#: 2-core CPU does in about a quarter of an hour (the chapter's paper scale): 2 tomograms of
#: 192² per group of rungs with the frozen domain's targets per tomogram and area (its paper
#: scale's 80/460/125/386 over 8 tomograms of 256², times (192/256)²) and its membranes per
#: area (1 vesicle + 1 sheet against 2 + 2 on 256²), so the density of target copies, crowders
#: and membranes is the domain's; the scene is not oversampled (13.68 Å instead of 6.84 Å).
#: ``oversampled``: every physical setting of the frozen domain, half its paper scale (4
#: tomograms of 256², the scene at 6.84 Å), for a GPU.
LADDER_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {"tomograms": 1, "tomogram_xy": 96, "oversample": 1, "tilt_step_deg": 5.0,
              "vesicles": 1, "sheets": 1,
              "counts": {"ribosome": 2, "membrane": 2, "TRiC": 2, "proteasome": 2},
              "snr_pairs_per_class": 1},
    "reduced": {"tomograms": 2, "tomogram_xy": 192, "oversample": 1, "tilt_step_deg": 2.0,
                "vesicles": 1, "sheets": 1,
                "counts": {"ribosome": 11, "membrane": 65, "TRiC": 18, "proteasome": 54},
                "snr_pairs_per_class": 5},
    "oversampled": {"tomograms": 4, "tomogram_xy": 256, "oversample": 2, "tilt_step_deg": 2.0,
                    "counts": {"ribosome": 40, "membrane": 230, "TRiC": 62, "proteasome": 193},
                    "snr_pairs_per_class": 20},
}

#: Most tomograms per planned one when a group's scenes hold too few targets (isolated
#: particles pack sparsely).
_MAX_TOMOGRAM_FACTOR = 5


def rung(name: str) -> Rung:
    """Return the rung called ``name``.

    Parameters
    ----------
    name : str
        A name of :data:`RUNGS`.

    Returns
    -------
    Rung
        The rung.
    """
    for r in RUNGS:
        if r.name == name:
            return r
    raise ValueError(f"unknown rung {name!r}; valid: {', '.join(r.name for r in RUNGS)}")


def ladder_sizes(scale: str) -> dict[str, Any]:
    """Return the sizes of a ladder scale (a copy).

    Parameters
    ----------
    scale : str
        A name of :data:`LADDER_SCALES`.

    Returns
    -------
    dict
        Size parameters for :func:`~cryo_companion.papers.che2019.test_domain.generate_sets`.
    """
    if scale not in LADDER_SCALES:
        raise ValueError(f"unknown ladder scale {scale!r}; valid: {', '.join(LADDER_SCALES)}")
    return json.loads(json.dumps(LADDER_SCALES[scale]))


def ladder_hash(scale: str, domain: str = DEFAULT_DOMAIN) -> str:
    """sha256 of what a ladder's data depend on: the domain's hash, the sizes and the rungs.

    Parameters
    ----------
    scale : str
        A name of :data:`LADDER_SCALES`.
    domain : str
        The frozen test domain.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    spec = {"domain": domain_hash(domain), "sizes": ladder_sizes(scale),
            "rungs": [r.to_dict() for r in RUNGS]}
    canon = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _groups() -> dict[SceneRealism, list[Rung]]:
    """Rungs grouped by scene content (one generation per group, one set per imaging mode)."""
    out: dict[SceneRealism, list[Rung]] = {}
    for r in RUNGS:
        out.setdefault(r.realism, []).append(r)
    return out


def make_ladder(scale: str, device: torch.device | str | None = None, seed: int | None = None,
                *, domain: str = DEFAULT_DOMAIN, progress: bool = False,
                only: tuple[str, ...] | None = None) -> dict[str, SubtomogramSet]:
    """Simulate the ladder's test sets, one per rung.

    Parameters
    ----------
    scale : str
        A name of :data:`LADDER_SCALES`.
    device : torch.device, str or None
        Where to simulate (default: auto).
    seed : int or None
        Base seed of every group of rungs (default: the domain's pre-registered seed).
    domain : str
        The frozen test domain whose physics the ladder uses (the default one: the ladder is
        a diagnosis, and the second domain stays untouched by it).
    progress : bool
        Progress bars (on a terminal only).
    only : tuple of str or None
        Make only these rungs (and the others of their groups); default all.

    Returns
    -------
    dict
        ``{rung name: SubtomogramSet}`` in ladder order; each set's ``meta`` carries the
        domain's name and hash, ``rung``, ``ladder_scale`` and ``ladder_hash``.
    """
    sizes = ladder_sizes(scale)
    names = {r.name for r in RUNGS} if only is None else {rung(n).name for n in only}
    cfg = domain_config(domain)
    lh = ladder_hash(scale, domain)
    made: dict[str, SubtomogramSet] = {}
    for realism, group in _groups().items():
        if not names & {r.name for r in group}:
            continue
        sets = generate_sets(cfg, sizes, seed=seed, device=device, realism=realism,
                             modes=[r.mode for r in group], scale=f"ladder-{scale}",
                             progress=progress,
                             max_tomograms=_MAX_TOMOGRAM_FACTOR * int(sizes["tomograms"]))
        for r in group:
            data = sets[r.mode]
            data.meta.update({"rung": r.name, "ladder_scale": scale, "ladder_hash": lh})
            made[r.name] = data
    return {r.name: made[r.name] for r in RUNGS if r.name in made}


def ensure_ladder(folder: str | os.PathLike | None, scale: str,
                  device: torch.device | str | None = None, seed: int | None = None, *,
                  domain: str = DEFAULT_DOMAIN, progress: bool = False
                  ) -> dict[str, SubtomogramSet]:
    """Return the ladder's sets from their cache, made and cached first where missing or stale.

    Parameters
    ----------
    folder : str, os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`); rung ``R`` lives in
        ``ladder_DOMAIN_SCALE/R`` as a subtomogram folder (MRC files, ``labels.csv``,
        ``meta.json``).
    scale : str
        A name of :data:`LADDER_SCALES`.
    device : torch.device, str or None
        Where to simulate what is missing.
    seed : int or None
        Base seed (default: the domain's pre-registered seed).
    domain : str
        The frozen test domain.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        ``{rung name: SubtomogramSet}`` in ladder order. A cached rung is used only if it was
        made with the same :func:`ladder_hash` and seed.
    """
    lh = ladder_hash(scale, domain)
    seed_ = int(domain_config(domain)["seed"] if seed is None else seed)
    root = (Path(folder) if folder is not None else default_data_dir()) / \
        f"ladder_{domain}_{scale}"
    have: dict[str, SubtomogramSet] = {}
    for r in RUNGS:
        dest = root / r.name
        if not (dest / "meta.json").is_file():
            continue
        try:
            data = load_subtomograms(dest)
        except (ValueError, OSError, KeyError):
            continue  # unreadable: made again
        if data.meta.get("ladder_hash") == lh and data.meta.get("seed") == seed_:
            have[r.name] = data
    missing = tuple(r.name for r in RUNGS if r.name not in have)
    if missing:
        made = make_ladder(scale, device, seed_, domain=domain, progress=progress, only=missing)
        for name, data in made.items():
            save_subtomograms(root / name, data)
            have[name] = data
    return {r.name: have[r.name] for r in RUNGS}


def describe(sets: Mapping[str, SubtomogramSet]) -> list[dict[str, Any]]:
    """One row per rung: what it adds, its counts, tomograms and measured SNR.

    Parameters
    ----------
    sets : Mapping
        ``{rung name: SubtomogramSet}`` from :func:`make_ladder` or :func:`ensure_ladder`.

    Returns
    -------
    list of dict
        ``rung``, ``adds``, ``n``, ``counts``, ``tomograms``, ``snr_median`` (Frank & Al-Ali on
        aligned same-class pairs, :func:`~cryo_companion.simulate.tomogram.measure_snr`).
    """
    out = []
    for name, data in sets.items():
        r = rung(name)
        out.append({"rung": name, "adds": r.adds, "mode": r.mode, "n": len(data),
                    "counts": data.counts, "tomograms": data.meta.get("tomograms"),
                    "snr_median": (data.meta.get("snr") or {}).get("median")})
    return out
