"""Domain randomization (Che et al., BIBM 2019): what is specific to that paper.

- :mod:`.presets`      the simulator presets "randomized" and "baseline" (III-B, IV)
- :mod:`.test_domain`  the frozen held-out test domain standing in for the paper's real data
- :mod:`.train`        the Table I training recipe (IV-A) and its runs
- :mod:`.evaluate`     test-time preprocessing, metrics and the summary over seeds (IV-B, V)
- :mod:`.claims`       Table I's cited numbers
"""
