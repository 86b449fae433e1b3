"""Benchmarks: each module measures one part and records figures with provenance in results/.

``cryo-companion bench TARGET`` runs them: ``simulate`` (:mod:`.simulate`, the subtomogram
simulator against :mod:`.numpy_reference`), ``tomogram`` (:mod:`.tomogram`), ``shrec-eval``
(:mod:`.shrec_eval`), ``train-step`` (:mod:`.train_step`), ``shrec-data``
(:mod:`.shrec_data`, one model of the SHREC 2020 data set) and ``template-matching``
(:mod:`.template_matching`, ms per rotation and the twelve classes' search). Every module has ``add_args(parser)``
and ``main(args) -> int``. Nothing in the library imports this package.
"""

#: Benchmark targets of ``cryo-companion bench``: name -> module (under this package).
TARGETS: dict[str, str] = {"simulate": "simulate", "tomogram": "tomogram",
                           "shrec-eval": "shrec_eval", "train-step": "train_step",
                           "shrec-data": "shrec_data", "template-matching": "template_matching"}

__all__ = ["TARGETS"]
