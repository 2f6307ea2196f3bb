#!/usr/bin/env python3
"""Builds genesys-swagger.json, a Swagger 2.0 document, from the operation
table that make-genesys-routes.py also reads.

Input: one JSON object per operation, {"method", "path", "permissions"}
(the Genesys Cloud Platform API v2 table, 3,265 operations, from the
MIT-licensed MyPureCloud/platform-client-sdk-cli repository). Each
operation carries the vendor's extension x-inin-requires-permissions,
{"type": "ANY", "permissions": [...]} (the vendor documents its lists as
"any of"); an operation that lists none has no extension. Paths are written
under basePath /api/v2, as the vendor's document does.

    python3 tests/data/make-genesys-swagger.py genesys-cloud-operations.json > tests/data/genesys-swagger.json
"""
import json
import re
import sys

BASE = "/api/v2"


def operation_id(method, path, taken):
    words = [w for seg in path.split("/") if seg and not seg.startswith("{")
             for w in re.split(r"[^A-Za-z0-9]+", seg) if w]
    name = method.lower() + "".join(w[:1].upper() + w[1:] for w in words)
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}{n}", n + 1
    taken.add(unique)
    return unique


def main(src):
    ops = json.load(open(src))
    paths, taken = {}, set()
    for op in ops:
        assert op["path"].startswith(BASE + "/"), op["path"]
        rel = op["path"][len(BASE):]
        entry = {"operationId": operation_id(op["method"], rel, taken)}
        if op["permissions"]:
            entry["x-inin-requires-permissions"] = {"type": "ANY", "permissions": op["permissions"]}
        paths.setdefault(rel, {})[op["method"].lower()] = entry
    doc = {
        "swagger": "2.0",
        "info": {
            "title": "Genesys Cloud Platform API v2 (operations and permissions only)",
            "version": "166.0.0",
            "description": "Rebuilt by tests/data/make-genesys-swagger.py from the operation "
            "table of the MIT-licensed MyPureCloud/platform-client-sdk-cli repository, "
            "version 166.0.0: methods, paths and x-inin-requires-permissions only.",
            "license": {"name": "MIT"},
        },
        "basePath": BASE,
        "paths": paths,
    }
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
