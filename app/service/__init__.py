"""Use cases: one transaction each, owned here; views and the CLI call these."""
