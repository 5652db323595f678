"""End-to-end benchmark of RaceWeb: ``python bench/run.py --help``."""
