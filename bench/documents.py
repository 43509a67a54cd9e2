"""Milliseconds to render one document: the CII XML alone, and the PDF/A-3 with it embedded.

    .venv/bin/python bench/documents.py          # 50 of each after 5 not measured
    .venv/bin/python bench/documents.py 200

A realistic invoice: 10 lines at two VAT rates (19 % and 7 %), a discount, shipping. Pure
rendering in this process (no database, no HTTP): what a document fetch adds to a read of its
invoice. The objects built before the first render are frozen out of the garbage collector's
passes, as a gunicorn worker does once its app is built (app/wsgi.py). docs/performance.md
records the figures.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from app import factory  # noqa: F401  (every module a worker has loaded)
from app.adapters.billing import billed
from app.adapters.cii import cii_xml
from app.adapters.pdf import PdfRenderer
from app.config import sellers
from app.domain import documents
from app.domain.model import InvoiceSpec, ItemSpec, Order, OrderHeader

SELLERS = Path(__file__).resolve().parents[1] / "config" / "sellers.demo.toml"
ADDRESS = {
    "firstName": "Max", "lastName": "Mustermann", "street": "Beispielstr.", "streetNumber": "13A",
    "postalCode": "48213", "postalPlace": "Muenster", "countryCode": "DE",
}  # fmt: skip


def realistic_invoice() -> documents.Document:
    """Eight articles at 19 % and 7 %, a discount and shipping: one invoice, version 1."""
    items = [
        ItemSpec(ref, 1000 * (1 + ref % 3), 299 + 1000 * ref, 1900 if ref % 2 else 700,
                 "NORMAL" if ref % 2 else "REDUCED", "SALES_ARTICLE", f"SKU-{ref}",
                 f"Article number {ref}, in a longer description")
        for ref in range(1, 9)
    ]  # fmt: skip
    items.append(ItemSpec(9, 1000, -1000, 1900, "NORMAL", "DISCOUNT", "DISC", "Discount"))
    items.append(ItemSpec(10, 1000, 495, 1900, "NORMAL", "SHIPPING_COSTS", "SHIP", "Shipping"))
    header = {"orderDate": "2024-06-01", "vatDeclarationCountry": "DE", "billToAddress": ADDRESS}
    facts = OrderHeader("DE", date(2024, 6, 1), header)
    order = Order("1000", "ODE12345678901", "TFI2021072801", "EUR", facts, items)
    spec = InvoiceSpec("IDE12345678901", date(2024, 6, 10), date(2024, 7, 10), tuple(range(1, 11)),
                       {"dispatchDate": "2024-06-09"})  # fmt: skip
    invoice, _ = order.create_invoice(spec)
    seller, version = sellers(str(SELLERS))["1000"], documents.version_of(invoice, 1)
    return documents.invoice_document(order, invoice, 1, seller, billed(order, version))


def timed(render: Callable[[], bytes], count: int) -> list[float]:
    for _ in range(5):
        render()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        render()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    document = realistic_invoice()
    renderer = PdfRenderer()
    gc.freeze()  # as app/wsgi.py, once the worker's app is built
    results = {
        "xml": timed(lambda: cii_xml(document), count),
        "pdf (xml + pdf)": timed(lambda: renderer.pdf(document, cii_xml(document)), count),
    }
    print(f"{count} renders each, load average {os.getloadavg()[0]:.2f}")
    for name, times in results.items():
        p95 = statistics.quantiles(times, n=20)[18]
        print(f"{name:16} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms")


if __name__ == "__main__":
    main()
