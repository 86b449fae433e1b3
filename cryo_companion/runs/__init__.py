"""Run the book: chapter parameters, results with provenance and the pipeline.

Chapter parameters (:mod:`.runtime`), results with provenance (:mod:`.results`) and the
papermill pipeline over the chapters (:mod:`.pipeline`).
"""
