"""HTTPS and gRPC over TLS with client certificates (a tda-server started with --tls-cert,
--tls-key, --tls-client-ca and --auth-tokens by tests/integration/http_python_client_test.cc):
the HTTP API and tda.Client answer alike with the CA and a client certificate; without a client
certificate, or trusting another CA, both fail.

Usage: https_test.py CONFIG.json
"""

import os
import ssl
import unittest
import urllib.request
from typing import Optional

from google.protobuf import json_format

import tda
from tda.v1 import attribution_pb2
from tda_test_support import assert_messages_close, load_config

CONFIG = load_config()


def pem(name: str) -> str:
    return os.path.join(CONFIG["certificates"], name)


def get_indexes(ca: str, client_certificate: bool) -> bytes:
    context = ssl.create_default_context(cafile=pem(ca))
    if client_certificate:
        context.load_cert_chain(pem("client.pem"), pem("client.key"))
    request = urllib.request.Request(CONFIG["http"] + "/v1/indexes")
    request.add_header("Authorization", f"Bearer {CONFIG['tokens']['reader']}")
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return response.read()


def client(ca: str, client_certificate: bool, token: Optional[str]) -> tda.Client:
    certificate = {"tls_cert": pem("client.pem"), "tls_key": pem("client.key")}
    return tda.Client(CONFIG["address"], token=token, tls_ca=pem(ca), timeout=30,
                      **(certificate if client_certificate else {}))


class HttpsTest(unittest.TestCase):

    def test_https_equals_grpc_over_tls(self) -> None:
        listed = json_format.Parse(get_indexes("ca.pem", True),
                                   attribution_pb2.ListIndexesResponse())
        got = listed.indexes[0].description
        with client("ca.pem", True, CONFIG["tokens"]["reader"]) as grpc_client:
            want = grpc_client.describe().proto
            self.assertEqual(len(grpc_client.attribute(ids=["fashion-mnist/test/3"], top_k=2)
                                 .results[0].proponents), 2)
        for d in (got, want):  # the background checksum pass may move between the two calls
            d.ClearField("verification")
        assert_messages_close(self, got, want, rel_tol=0)

    def test_without_client_certificate_or_with_another_ca_fails(self) -> None:
        for ca, certificate in (("ca.pem", False), ("other-ca.pem", True)):
            with self.assertRaises(OSError, msg=f"{ca}, client certificate {certificate}"):
                get_indexes(ca, certificate)
            with client(ca, certificate, CONFIG["tokens"]["reader"]) as grpc_client:
                with self.assertRaises(tda.TdaError) as refused:
                    grpc_client.describe()
                self.assertEqual(refused.exception.code_name, "UNAVAILABLE")


if __name__ == "__main__":
    unittest.main(verbosity=2)
