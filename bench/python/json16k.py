"""json16k.py — a benchmark WSGI application that builds a 16 KiB JSON document per request (json.dumps of 128 records)."""
import json


def app(environ, start_response):
    # About 128 bytes per record once encoded: 16 KiB in all, rebuilt and
    # encoded on every request, as an API endpoint would.
    items = [{"id": i, "name": f"item-{i:04d}", "price": i * 1.25, "tags": ["a", "b", "c"],
              "in_stock": i % 3 != 0, "note": "x" * 24} for i in range(128)]
    body = json.dumps({"count": len(items), "items": items}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
