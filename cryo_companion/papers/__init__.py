"""The four papers: each one's constants, presets, thresholds, cited claims and table assembly.

- :mod:`.che2019`    domain randomization (Che et al., BIBM 2019): presets, test domain, Table I
- :mod:`.ssn3d`      subtomogram semantic segmentation (Liu et al., ICIP 2018)
- :mod:`.dsmnet`     DSM-Net: classification + segmentation + structure recovery
- :mod:`.shrec2020`  the SHREC 2020 benchmark: classes, particle lists, metrics, cited tables
- :mod:`.claims`     every cited number beside where ours is in ``results/``

The generic machinery (physics, simulators, models, learning, metrics) never imports this
package; it imports them.
"""
