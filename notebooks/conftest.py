"""pytest collects only the paired ``.ipynb`` here (nbval), never the jupytext ``.py`` sources."""
collect_ignore_glob = ["*.py"]
