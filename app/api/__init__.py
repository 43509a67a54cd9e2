"""HTTP: schemas, views, authentication and the one place errors become problem+json."""
