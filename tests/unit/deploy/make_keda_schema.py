"""Writes keda_scaledobject.schema.json: KEDA's ScaledObject as a JSON schema, from the pydantic models
that cloudcoil-models-keda generates from KEDA's CRDs, with unknown fields refused as the API server's
strict field validation refuses them.

Run in a throwaway virtualenv (the package's pytest plugin and its dependencies stay out of the project's):
    python -m venv /tmp/keda && /tmp/keda/bin/pip install 'cloudcoil-models-keda==2.16.1.0'
    /tmp/keda/bin/python tests/unit/deploy/make_keda_schema.py
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cloudcoil.models.keda.v1alpha1 import ScaledObject  # type: ignore[import-not-found]

OUT = Path(__file__).with_name("keda_scaledobject.schema.json")


def closed(node: Any) -> Any:
    """Every object with named properties takes no others; maps (labels, a trigger's metadata) stay open."""
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    elif isinstance(node, list):
        node = [closed(value) for value in node]
    return node


def main() -> None:
    schema = closed(ScaledObject.model_json_schema(by_alias=True, mode="validation"))
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"KEDA ScaledObject (keda.sh/v1alpha1) from cloudcoil-models-keda "
        f"{version('cloudcoil-models-keda')}; regenerate with {Path(__file__).name}",
        **schema,
    }
    OUT.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
