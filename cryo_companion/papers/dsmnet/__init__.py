"""DSM-Net: multi-task classification, segmentation and coarse structure recovery.

``paper_tables`` (Tables 1-4, the recipe and "5.0" as cited, and the readings they support),
``datasets`` (data sets A and B from the crowded generator, C from the realistic simulator,
``dataset_c.json``), ``splits`` (10 % / 10 % / the rest; GroEL left out), ``training`` (the
recipe and every run of Tables 2-4 and 3.5 as data, the networks they build), ``evaluate``
(inputs, recovery targets, scores, convergence), ``tables`` (Tables 2-4 beside the paper's, its
claims checked), ``unseen`` (the unseen GroEL: clusters, t-SNE, recovered structure, FSC),
``apply`` (trained weights on a user's subtomograms) and ``claims`` (the landing table's rows).
The network itself is :mod:`cryo_companion.models.dsmnet`.
"""
