"""Classical (unsupervised) segmentation of subtomograms: baselines for the learned segmenters.

Import from the submodules (``target_region``: the target segmentation of Xu & Alber 2013).
"""
