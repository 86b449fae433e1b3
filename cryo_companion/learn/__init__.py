"""Model-agnostic training: one loop, batch sources, many runs in one step, chunked prediction.

- :mod:`.fit`: :func:`~cryo_companion.learn.fit.fit` trains one model (exact resume from atomic
  checkpoints, timing split into data and network, precision modes, validation hook, progress).
- :mod:`.multirun`: :func:`~cryo_companion.learn.multirun.fit_many` trains N independent runs of
  one architecture in one step of one process (``torch.func`` + ``vmap`` or a loop).
- :mod:`.batches`: batch sources (the simplified simulator, a ``SubtomogramSet`` on disk).
- :mod:`.predict`: chunked prediction on the model's device, generic over outputs.
- :mod:`.distributed`: runs spread over the processes of ``torchrun``.
- :mod:`.step`, :mod:`.precision`, :mod:`.checkpoint`: the pieces the loop is made of.

Nothing here imports a paper: a paper passes its network, loss, batches and settings in.
"""
