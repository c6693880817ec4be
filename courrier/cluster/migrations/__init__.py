"""Numbered schema files of the cluster store (courrier/cluster/pg.py applies them)."""
