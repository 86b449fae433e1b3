"""Segmentation of subtomograms: the classical baseline and the trained SSN3D networks.

Import from the submodules (``target_region``: the target segmentation of Xu & Alber 2013;
``network``: segmentation with trained SSN3D weights, their file format and preprocessing).
"""
