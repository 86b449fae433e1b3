"""Domain randomization (Che et al., BIBM 2019): what is specific to that paper.

- :mod:`.presets`      the simulator presets "randomized" and "baseline" (III-B, IV)
- :mod:`.test_domain`  the two frozen held-out test domains standing in for the paper's real
                       data, and their one generator
- :mod:`.ladder`       the reality-gap ladder: the test domain with realism added factor by factor
- :mod:`.ladder_eval`  every Table I network on every rung; where the gap opens
- :mod:`.ablation`     one randomized factor fixed at a time (configurations, evaluation)
- :mod:`.train`        the Table I training recipe (IV-A) and its runs
- :mod:`.evaluate`     test-time preprocessing, metrics and the summary over seeds (IV-B, V)
- :mod:`.claims`       Table I's cited numbers
"""
