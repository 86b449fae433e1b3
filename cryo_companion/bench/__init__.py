"""Benchmarks: each module measures one part and records figures with provenance in results/.

``cryo-companion bench TARGET`` runs them: ``simulate`` (:mod:`.simulate`, the subtomogram
simulator against :mod:`.numpy_reference`), ``tomogram`` (:mod:`.tomogram`), ``shrec-eval``
(:mod:`.shrec_eval`), ``shrec-data`` (:mod:`.shrec_data`, one model of the SHREC 2020 data
set), ``train`` (:mod:`.train`: N training runs per step, in one process and in N; the former
``train-step`` target is its ``--fast-step``), ``context`` (:mod:`.context`, the cost of context
randomization) and ``template-matching`` (:mod:`.template_matching`, ms per rotation and the
twelve classes' search). Every module has ``add_args(parser)`` and ``main(args) -> int``.
Nothing in the library imports this package.
"""

#: Benchmark targets of ``cryo-companion bench``: name -> module (under this package).
TARGETS: dict[str, str] = {"simulate": "simulate", "tomogram": "tomogram",
                           "shrec-eval": "shrec_eval", "shrec-data": "shrec_data",
                           "train": "train", "context": "context",
                           "template-matching": "template_matching"}

__all__ = ["TARGETS"]
