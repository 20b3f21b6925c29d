"""Subcommand modules of the ``uglspot`` CLI; see ``uglspot.cli``."""
