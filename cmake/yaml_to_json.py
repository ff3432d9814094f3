"""Converts a YAML document (docs/openapi.yaml) to JSON, so C++ tests can read it with RapidJSON.

Usage: yaml_to_json.py IN.yaml OUT.json
"""
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    document = yaml.safe_load(f)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(document, f, default=str)
