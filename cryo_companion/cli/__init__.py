"""Command-line interface: one module per subcommand, each with ``add_args`` and ``main``.

Subcommands are discovered from the modules of this package, so adding a command is adding a
file. Its module docstring's first line is the command's help.
"""
