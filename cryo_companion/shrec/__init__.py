"""SHREC 2020 (Gubins et al. 2020): the benchmark's classes, particle lists and evaluation."""
