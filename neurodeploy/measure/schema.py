"""The versioned JSON Schema of ``report.json`` (documented in docs/report-schema.md) and a
small validator for the subset of JSON Schema it uses (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum``, ``const``, ``minimum``,
``maximum``, ``anyOf``, ``$ref`` to ``#/definitions/...``), so validation needs no extra
package. ``python -m neurodeploy.measure.schema`` prints the schema.
"""

from __future__ import annotations

import json
import math
import sys

from ..hardware.profiles import KINDS

SCHEMA_ID = "neurodeploy.report"
SCHEMA_VERSION = "1.2"

_num = {"type": "number"}
_num_or_null = {"type": ["number", "null"]}
_str = {"type": "string"}

_constant = {
    "type": "object",
    "required": ["value", "unit", "si", "source", "confidence"],
    "properties": {
        "value": _num, "unit": _str, "si": _num, "source": _str,
        "confidence": {"enum": ["measured", "published", "estimated"]},
    },
}

SCHEMA: dict = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://neurodeploy/report.schema.json",
    "title": "neurodeploy report",
    "type": "object",
    "required": ["schema", "schema_version", "kind", "created", "neurodeploy_version", "inputs", "graph", "targets"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"enum": ["profile", "compare"]},
        "created": _str,
        "neurodeploy_version": _str,
        "inputs": {
            "type": "object",
            "required": ["model", "input", "samples", "steps", "dt", "reset", "labels", "readout"],
            "properties": {
                "model": _str, "input": _str,
                "samples": {"type": "integer", "minimum": 0},
                "steps": {"type": "integer", "minimum": 0},
                "dt": {"type": "number", "minimum": 0},
                "reset": {"enum": ["zero", "subtract"]},
                "labels": {"type": "boolean"},
                "readout": {"enum": ["spikes", "membrane", "auto"]},
                "raster_sample": {"type": "integer", "minimum": 0},
            },
        },
        "graph": {
            "type": "object",
            "required": ["dt", "reset", "inputs", "outputs", "nodes", "edges", "neurons", "synapses"],
            "properties": {
                "nodes": {"type": "array", "items": {"type": "object", "required": ["name", "type", "input_shape", "output_shape"]}},
                "neurons": {"type": "integer", "minimum": 0},
                "synapses": {"type": "integer", "minimum": 0},
            },
        },
        "targets": {"type": "array", "items": {"$ref": "#/definitions/target"}},
        "reference": {"type": ["string", "null"]},
        "summary": {"type": "array", "items": {"$ref": "#/definitions/summary_row"}},
        "diagnostics": {"type": "array", "items": {"$ref": "#/definitions/diagnostic"}},
        "calibration": {"type": "object", "required": ["source", "samples", "disjoint"],
                        "properties": {"source": _str, "samples": {"type": "integer", "minimum": 0},
                                       "disjoint": {"type": "boolean"}}},
        "attribution": {"type": "object"},
    },
    "definitions": {
        "constant": _constant,
        "diagnostic": {
            "type": "object", "required": ["code", "node", "message"],
            "properties": {"code": _str, "node": _str, "message": _str},
        },
        "description": {  # Program.describe(), docs/protocol.md
            "type": "object",
            "required": ["target", "dt", "lag", "quantization", "mapping", "resources", "memory", "calibration",
                         "crossbars", "run_options", "compile_options"],
            "properties": {
                "target": _str, "dt": _num_or_null, "lag": {"type": "object"},
                "run_options": {"type": "object", "additionalProperties": _str},
                "compile_options": {"type": "object"},
            },
        },
        "target": {
            "type": "object",
            "required": ["target", "status"],
            "properties": {
                "target": _str,
                "status": {"enum": ["ok", "skipped", "error"]},
                "reason": _str,
                "hardware": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/hardware"}]},
                "metrics": {"$ref": "#/definitions/metrics"},
                "energy": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/energy"}]},
                "latency": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/latency"}]},
                "memory": {"type": ["object", "null"]},
                "quantization": {"type": ["object", "null"]},
                "mapping": {"type": ["object", "null"]},
                "description": {"$ref": "#/definitions/description"},
                "diagnostics": {"type": "array", "items": {"$ref": "#/definitions/diagnostic"}},
                "info": {"type": "object"},
                "agreement": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/agreement"}]},
            },
        },
        "hardware": {
            "type": "object",
            "required": ["name", "kind", "constants"],
            "properties": {
                "name": _str, "kind": _str,
                "constants": {"type": "object", "additionalProperties": {"$ref": "#/definitions/constant"}},
            },
        },
        "metrics": {
            "type": "object",
            "required": ["samples", "steps", "spikes", "activation_sparsity", "synaptic_ops", "neuron_updates", "accuracy", "readout"],
            "properties": {
                "accuracy": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0, "maximum": 1}]},
                "readout": {"type": ["string", "null"]},
                "spikes": {
                    "type": "object", "required": ["total", "per_sample", "layers"],
                    "properties": {
                        "total": {"type": "integer", "minimum": 0},
                        "layers": {"type": "object", "additionalProperties": {
                            "type": "object", "required": ["spikes", "neurons", "rate"],
                            "properties": {"spikes": {"type": "integer", "minimum": 0}, "rate": _num_or_null},
                        }},
                    },
                },
                "activation_sparsity": {
                    "type": "object", "required": ["sparsity", "layers"],
                    "properties": {"sparsity": {"type": "number", "minimum": 0, "maximum": 1}},
                },
                "synaptic_ops": {
                    "type": "object", "required": ["Effective_ACs", "Effective_MACs", "Dense", "layers"],
                    "properties": {
                        "Effective_ACs": {"type": "number", "minimum": 0},
                        "Effective_MACs": {"type": "number", "minimum": 0},
                        "Dense": {"type": "number", "minimum": 0},
                        "layers": {"type": "object", "additionalProperties": {
                            "type": "object", "required": ["effective", "dense", "kind", "method"],
                            "properties": {"kind": {"enum": ["AC", "MAC"]}},
                        }},
                    },
                },
                "neuron_updates": {"type": "object", "required": ["total", "per_sample", "layers"]},
            },
        },
        "term": {
            "type": "object",
            "required": ["layer", "kind", "count", "constant", "per_event_J", "energy_J", "source", "confidence"],
            "properties": {"energy_J": {"type": "number", "minimum": 0}, "confidence": {"enum": ["measured", "published", "estimated"]}},
        },
        "energy": {
            "type": "object",
            "required": ["profile", "total_J", "dynamic_J", "static_J", "per_inference_J", "run_time_s", "by_kind", "by_layer", "terms", "constants", "assumptions"],
            "properties": {
                "total_J": {"type": "number", "minimum": 0},
                "per_inference_J": {"type": "number", "minimum": 0},
                "by_kind": {"type": "object", "additionalProperties": _num},
                "by_layer": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _num}},
                "terms": {"type": "array", "items": {"$ref": "#/definitions/term"}},
                "constants": {"type": "object", "additionalProperties": {"$ref": "#/definitions/constant"}},
                "assumptions": {"type": "array", "items": _str},
            },
        },
        "latency": {
            "type": "object",
            "required": ["model", "per_step_s", "per_inference_s", "run_time_s", "layers", "constants", "assumptions"],
            "properties": {
                "model": {"enum": list(KINDS)},
                "per_step_s": {"type": "number", "minimum": 0},
                "per_inference_s": {"type": "number", "minimum": 0},
                "constants": {"type": "object", "additionalProperties": {"$ref": "#/definitions/constant"}},
            },
        },
        "agreement": {
            "type": "object",
            "required": ["lag", "spike_match", "layers", "first_divergence", "identical"],
            "properties": {
                "lag": {"type": ["integer", "object"]},
                "spike_match": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0, "maximum": 1}]},
                "first_divergence": {"anyOf": [{"type": "null"}, {
                    "type": "object", "required": ["step", "layer"],
                    "properties": {"step": {"type": "integer", "minimum": 0}, "layer": _str},
                }]},
                "identical": {"type": "boolean"},
            },
        },
        "summary_row": {
            "type": "object",
            "required": ["target", "status", "accuracy", "spikes_per_sample", "energy_per_inference_J", "latency_per_inference_s", "spike_match", "lag"],
            "properties": {  # total (dynamic + static) and dynamic energy apart, both per inference
                "energy_per_inference_J": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0}]},
                "dynamic_energy_per_inference_J": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0}]},
            },
        },
    },
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _errors(value, schema: dict, root: dict, path: str):
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/definitions/"):
            raise ValueError(f"unsupported $ref {ref}")
        yield from _errors(value, root["definitions"][ref.split("/")[-1]], root, path)
        return
    if "anyOf" in schema:
        alts = [list(_errors(value, s, root, path)) for s in schema["anyOf"]]
        if all(alts):
            # report the alternative whose type matched (its errors say what is wrong)
            typed = [a for a in alts if not any(e.startswith(f"{path}: expected ") for e in a)]
            yield from (typed[0] if typed else [f"{path}: matches none of the allowed forms"])
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            yield f"{path}: expected {' or '.join(types)}, got {type(value).__name__}"
            return
    if "const" in schema and value != schema["const"]:
        yield f"{path}: must be {schema['const']!r}, got {value!r}"
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            yield f"{path}: non-finite number {value!r}"
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{path}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{path}: {value} > maximum {schema['maximum']}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                yield f"{path}: missing required field '{k}'"
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                yield from _errors(v, props[k], root, f"{path}.{k}")
            elif extra is False:
                yield f"{path}: unexpected field '{k}'"
            elif isinstance(extra, dict):
                yield from _errors(v, extra, root, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            yield from _errors(v, schema["items"], root, f"{path}[{i}]")


def validate(report: dict, schema: dict | None = None) -> list[str]:
    """All violations of ``schema`` (default: the report schema) in ``report``; [] if valid."""
    schema = SCHEMA if schema is None else schema
    return list(_errors(report, schema, schema, "$"))


def check(report: dict) -> None:
    """Raise ValueError listing the first violations when ``report`` does not validate."""
    errs = validate(report)
    if errs:
        raise ValueError("report does not match its schema: " + "; ".join(errs[:5]))


if __name__ == "__main__":  # pragma: no cover
    json.dump(SCHEMA, sys.stdout, indent=2)
    print()
