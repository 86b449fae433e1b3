"""cryo_companion: the reproducible companion to four cryo-ET deep-learning papers.

Subpackages and modules (one concept each; generic machinery first):

- ``structures``  PDB/mmCIF/MRC reading, atoms -> density, membranes, class-set catalogue
- ``optics``, ``rotation``, ``snr``, ``filters``  physics: pure functions on tensors
- ``simulate``    simplified subtomogram simulator, randomization sampler, tomogram simulator
- ``models``      the papers' networks
- ``metrics``     classification / segmentation metrics and confidence intervals
- ``dataset``, ``mrc``  subtomogram sets and MRC files on disk
- ``papers``      each paper's constants, presets, claims and table assembly
- ``runs``        chapter parameters, results with provenance, the papermill pipeline
- ``book``, ``bench``, ``cli``  presentation, benchmarks and the command line (import anything;
  nothing in the library imports them)
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryo_companion")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
