"""cryo_companion: the reproducible companion to four cryo-ET deep-learning papers.

Subpackages and modules (one concept each):

- ``structures``   PDB/mmCIF/MRC reading, atoms -> density, membranes, class-set catalogue
- ``optics``       CTF, MTF, missing-wedge masks (pure functions of frequency grids)
- ``simulate``     simplified subtomogram simulator; tomogram simulator and test domain
- ``randomization`` domain-randomization parameter distributions and presets
- ``models``       the papers' networks
- ``train``        training loops
- ``metrics``      classification / segmentation metrics
- ``shrec``        SHREC 2020 localisation and classification evaluation
- ``runtime``, ``results``, ``pipeline``  notebook parameters, provenance, papermill pipeline
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryo_companion")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
