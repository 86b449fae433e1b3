"""Sphinx helpers of the book (loaded by ``_config.yml``)."""
