"""The accounting domain: plain Python, no Flask, no SQLAlchemy."""
