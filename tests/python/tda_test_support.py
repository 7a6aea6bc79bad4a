"""Shared by the Python tests of tda: the config the C++ harness writes, `tda query --json`,
and a field-by-field comparison of two messages that is generic over their fields."""

import json
import math
import os
import subprocess
import sys
import unittest
from typing import Any, Dict, List

from google.protobuf import descriptor, json_format, message

from tda.v1 import attribution_pb2


def load_config() -> Dict[str, Any]:
    """The harness's JSON config (argv[1], removed so that unittest does not see it)."""
    with open(sys.argv.pop(1)) as f:
        return json.load(f)


def cli_query(config: Dict[str, Any], args: List[str]) -> attribution_pb2.AttributeResponse:
    """`tda query --index INDEX ARGS --json` (offline, the same engine as the server, on one
    compute thread as the test servers, so that sums are added in the same order)."""
    out = subprocess.run([config["cli"], "query", "--index", config["index"], "--json",
                          "--threads", "1", *args],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return json_format.Parse(out, attribution_pb2.AttributeResponse())


def cli_self_influence(config: Dict[str, Any], args: List[str]) -> Dict[str, Any]:
    """`tda index self-influence --index INDEX ARGS --json` (offline, one compute thread)."""
    out = subprocess.run([config["cli"], "index", "self-influence", "--index", config["index"],
                          "--json", *args], check=True, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout
    return json.loads(out)


def assert_messages_close(test: unittest.TestCase, got: message.Message, want: message.Message,
                          path: str = "", rel_tol: float = 1e-5) -> None:
    """Every field of `want` equals `got`'s: strings and integers exactly, floats and doubles
    to `rel_tol` (float32 rounding of scores computed in another process), recursively."""
    test.assertEqual(got.DESCRIPTOR.full_name, want.DESCRIPTOR.full_name, path)
    for field in want.DESCRIPTOR.fields:
        where = f"{path}.{field.name}"
        g, w = getattr(got, field.name), getattr(want, field.name)
        if field.label == descriptor.FieldDescriptor.LABEL_REPEATED:
            test.assertEqual(len(g), len(w), where)
            pairs = list(zip(g, w))
        else:
            if field.has_presence:
                test.assertEqual(got.HasField(field.name), want.HasField(field.name), where)
            pairs = [(g, w)]
        for i, (gi, wi) in enumerate(pairs):
            at = f"{where}[{i}]" if len(pairs) > 1 or field.label == field.LABEL_REPEATED else where
            if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
                assert_messages_close(test, gi, wi, at, rel_tol)
            elif field.type in (descriptor.FieldDescriptor.TYPE_FLOAT,
                                descriptor.FieldDescriptor.TYPE_DOUBLE):
                same = (math.isnan(gi) and math.isnan(wi)) or math.isclose(
                    gi, wi, rel_tol=rel_tol, abs_tol=1e-12)
                test.assertTrue(same, f"{at}: {gi} != {wi}")
            else:
                test.assertEqual(gi, wi, at)
