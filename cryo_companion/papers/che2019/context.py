"""The context bank of the book's context arms (beyond Che et al. 2019; issue 14).

Che et al. 2019 simulate one complex alone in an empty box; the boxes of their real test set (and
of this book's test domain) are crowded to the edge. The context arms (presets
``"randomized+context"`` and ``"baseline+context"``, :mod:`cryo_companion.papers.che2019.presets`)
pack neighbours around the target from this bank
(:class:`cryo_companion.simulate.context.ContextBank`):

* **Non-target complexes** (:data:`CONTEXT_COMPLEXES`): every complex of the offline structures
  that is *not* one of the test domain's crowders (``test_domain.json``: 2uv8, 3cf3, 1qvr, 1bxn,
  3d2f, 1u6g, 2cg9, 3h84), not one of the four classes' entries (4v7r, 4v94, 4cr2) and not
  another ribosome or proteasome (6qzp human 80S, 5mrc mitochondrial, 4v4r bacterial 70S and its
  30S / 50S subunits; 3j9i 20S and 6utj singly-capped proteasomes: they would be a second copy of
  a class shown as "not the class"). Training therefore never sees the test domain's crowder
  structures; the eight here span 30 kDa to 1.7 MDa, as the test domain's span 70 kDa to 2.5 MDa.
  Membrane proteins (``mb_*``) are left to the membrane class.
* **Copies of the classes**: the particle templates of the training template bank (ribosome,
  TRiC, proteasome), as the test domain packs more copies of its targets than it cuts out.
* **Membrane fragments** (:func:`cryo_companion.simulate.context.membrane_fragments`): discs of
  bilayer cut from fresh membrane patches, seeded apart from the membrane class's patches.

Weights (:data:`CONTEXT_MIX`, our choice): a candidate neighbour is a non-target complex with
probability 0.6, a copy of a class with 0.25 and a membrane fragment with 0.15 (uniform within a
kind). The occupancy range is the presets'
(:data:`cryo_companion.papers.che2019.presets.CONTEXT_FRACTION`).
"""
from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch

from cryo_companion.simulate.context import ContextBank, membrane_fragments
from cryo_companion.structures.density import load_density
from cryo_companion.structures.templates import TemplateBank

__all__ = ["CONTEXT_COMPLEXES", "CONTEXT_MIX", "EXCLUDED_FROM_CONTEXT", "MEMBRANE_FRAGMENTS",
           "MEMBRANE_FRAGMENT_SEED", "context_bank", "test_domain_structures"]

#: Non-target complexes of the training context (offline structures; none a test-domain crowder).
CONTEXT_COMPLEXES = ("1f4a", "1s3x", "3gl1", "3ipm", "3qm1", "6pxm", "7n4y", "8tux")
#: Offline entries kept out of the context: other ribosomes and proteasomes (see module docstring).
EXCLUDED_FROM_CONTEXT = ("6qzp", "5mrc", "4v4r", "4v4r_30S", "4v4r_50S", "3j9i", "6utj")
#: Probability that a candidate neighbour is of each kind (our choice).
CONTEXT_MIX = {"complex": 0.6, "class copy": 0.25, "membrane fragment": 0.15}
#: Number of membrane fragments in the bank, and their seed (the class's patches use seed 0).
MEMBRANE_FRAGMENTS = 16
MEMBRANE_FRAGMENT_SEED = 2014


def test_domain_structures() -> set[str]:
    """Return the entries of the frozen test domain: its crowders and its targets.

    Returns
    -------
    set of str
        Structure entries named in ``papers/che2019/test_domain.json``.
    """
    cfg = json.loads(resources.files("cryo_companion.papers.che2019")
                     .joinpath("test_domain.json").read_text())
    return set(cfg["crowders"]) | set(cfg["entries"].values())


def context_bank(templates: TemplateBank, *, device: torch.device | str | None = None,
                 compile: bool = False, use_cache: bool = True) -> ContextBank:
    """Build the context bank of the che2019 training simulator.

    Parameters
    ----------
    templates : TemplateBank
        The training template bank (``template_bank("che2019", 13.68, 40)``): its particle
        templates are the class copies; its voxel size, box and resolution are the bank's.
    device : torch.device or str or None
        The simulator's device.
    compile : bool
        Rotate the neighbours with the compiled gather (as the simulator's ``compile``).
    use_cache : bool
        Read/write the disk cache of computed densities.

    Returns
    -------
    ContextBank
        Kinds ``"complex"``, ``"class copy"`` and ``"membrane fragment"``, weighted by
        :data:`CONTEXT_MIX`.
    """
    box = int(templates.volumes.shape[-1])
    vs = float(templates.voxel_size_A)
    complexes = [load_density(e, vs, box, templates.resolution_A, use_cache=use_cache)
                 for e in CONTEXT_COMPLEXES]
    copies = [i for i, e in enumerate(templates.entries) if not e.startswith("membrane")]
    frags = membrane_fragments(MEMBRANE_FRAGMENTS, box, vs, MEMBRANE_FRAGMENT_SEED)
    parts = {"complex": (np.stack(complexes), list(CONTEXT_COMPLEXES)),
             "class copy": (templates.volumes[copies], [templates.entries[i] for i in copies]),
             "membrane fragment": (frags, [f"membrane fragment:{MEMBRANE_FRAGMENT_SEED}:{i}"
                                           for i in range(MEMBRANE_FRAGMENTS)])}
    vols, kinds, names, weights = [], [], [], []
    for kind, (v, nm) in parts.items():
        vols.append(np.asarray(v, dtype=np.float32))
        kinds += [kind] * len(nm)
        names += nm
        weights += [CONTEXT_MIX[kind] / len(nm)] * len(nm)
    return ContextBank(torch.from_numpy(np.concatenate(vols)), kinds, weights=weights,
                       names=names, device=device, compile=compile)
