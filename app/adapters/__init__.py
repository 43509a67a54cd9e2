"""Everything that talks to the database."""
