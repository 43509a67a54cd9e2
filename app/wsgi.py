"""The WSGI entry point for gunicorn (app.wsgi:app)."""

import gc

from app.factory import create_app

app = create_app()
# What the worker has built by now (modules, schemas, mappings, the document templates) lives
# as long as it does: frozen out of the garbage collector's full passes, which would otherwise
# walk all of it again and again. A document render allocates enough to start one every few
# renders: unfrozen, its slowest 5 % took twice its median (docs/performance.md).
gc.freeze()
