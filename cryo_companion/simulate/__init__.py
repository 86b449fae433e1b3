"""Simulators of subtomograms and tomograms.

The simplified subtomogram simulator (``subtomogram``) used for training, and the tomogram
simulator (``scene``, ``tiltseries``, ``testset``) that makes the held-out test domain.

Import from the submodules; this file re-exports nothing so that each stays importable alone.
"""
