"""SHREC 2020 (Gubins et al. 2020): the benchmark's classes, particle lists and evaluation.

* :mod:`.classes` - the twelve classes of Table 1 and the Table 5 size groups.
* :mod:`.particles` - reading/writing particle lists (text, CSV, STAR); x, y, z, 0-based voxels.
* :mod:`.metrics` - localisation (Table 3) and classification (Tables 4, 6) metrics, with the
  official evaluation script's rules (``outside="script"``).
* :mod:`.dataset` - the data set made by this package's simulator from the paper's recipe.
* :mod:`.layout` - the benchmark's file layout (``model_K/``), writing and reading it.
* :mod:`.paper_tables` - the paper's own Tables 1 (radii), 2-4, 6-9 (cited numbers).
* :mod:`.methods` - the compared methods as data (:data:`~.methods.RECIPES`), TM-T and TM-F.
* :mod:`.tm` - template matching of the twelve complexes (Sec. 3.7) on a tomogram.
* :mod:`.pipelines` - DeepFinder's, YOPO's and UMC's inference; detector weights files.
* :mod:`.training_data` - what each network trains on, cut from the data set's models.
* :mod:`.comparison` - Tables 3, 4, 6, 7 ours beside the paper's; Section 5's findings.
* :mod:`.worked_example` - a small scene with hand-worked answers.
* :mod:`.plot` - figures of the chapter.
"""
from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES, ShrecClass, size_group
from cryo_companion.papers.shrec2020.metrics import (
                       BENCHMARK_SCRIPT,
                       CLASS_ORDER,
                       ClassificationResult,
                       LocalisationResult,
                       ShrecEvaluation,
                       evaluate,
                       evaluate_classification,
                       evaluate_localisation,
)
from cryo_companion.papers.shrec2020.particles import (
                       ParticleList,
                       ParticleListError,
                       particle_list,
                       read_particle_list,
                       write_particle_list,
)

__all__ = [
                       "BENCHMARK_SCRIPT",
                       "CLASS_ORDER",
                       "SHREC2020_CLASSES",
                       "ClassificationResult",
                       "LocalisationResult",
                       "ParticleList",
                       "ParticleListError",
                       "ShrecClass",
                       "ShrecEvaluation",
                       "evaluate",
                       "evaluate_classification",
                       "evaluate_localisation",
                       "particle_list",
                       "read_particle_list",
                       "size_group",
                       "write_particle_list",
]
