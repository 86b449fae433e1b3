"""Running the book: chapter parameters (:mod:`.runtime`), results with provenance
(:mod:`.results`) and the papermill pipeline over the chapters (:mod:`.pipeline`)."""
