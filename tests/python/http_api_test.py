"""The JSON-over-HTTP API of a real tda-server (--http-listen; started by
tests/integration/http_python_client_test.cc), with curl-equivalent requests from urllib:
each endpoint answers what the gRPC API answers (through tda.Client); bad JSON is 400 with a
message, no token 401, a role too low 403, a body over --max-message-bytes 413; the errors'
bodies are {"code", "status", "message"}.

Usage: http_api_test.py CONFIG.json
"""

import http.client as http_client
import json
import unittest
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional, Tuple

import grpc
from google.protobuf import json_format

import tda
from tda.v1 import attribution_pb2, jobs_pb2
from tda_test_support import assert_messages_close, load_config

CONFIG = load_config()
QUERY = {"queries": [{"sampleId": "fashion-mnist/test/0"}, {"sampleId": "fashion-mnist/test/7"}],
         "topK": 4}


def http(method: str, path: str, body: Optional[Any] = None, token: Optional[str] = "reader",
         raw: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    """(HTTP status, body) of METHOD URL/path; `token` names a token of the config or None."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(CONFIG["http"] + path, data=data, method=method,
                                     headers=headers or {})
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {CONFIG['tokens'][token]}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ok_json(test: unittest.TestCase, method: str, path: str, **kwargs: Any) -> bytes:
    status, body = http(method, path, **kwargs)
    test.assertEqual(status, 200, body)
    return body


class HttpApiTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        cls.reader = tda.Client(CONFIG["address"], token=CONFIG["tokens"]["reader"])
        cls.operator = tda.Client(CONFIG["address"], token=CONFIG["tokens"]["operator"])

    def assert_error(self, status: int, body: bytes, http_status: int, code: str,
                     message_part: str) -> Dict[str, Any]:
        self.assertEqual(status, http_status, body)
        error = json.loads(body)
        self.assertEqual(error["status"], code)
        self.assertEqual(error["code"], grpc.StatusCode[code].value[0])
        self.assertIn(message_part, error["message"])
        return error

    def test_attribute_equals_grpc(self) -> None:
        body = ok_json(self, "POST", "/v1/attribute", body=QUERY)
        got = json_format.Parse(body, attribution_pb2.AttributeResponse())
        want = self.reader.attribute(ids=["fashion-mnist/test/0", "fashion-mnist/test/7"], top_k=4)
        self.assertEqual(len(got.results[0].proponents), 4)
        assert_messages_close(self, got, want.proto, rel_tol=1e-6)
        # Proto field names are accepted too; the reply uses the canonical lowerCamelCase.
        snake = {"queries": [{"sample_id": "fashion-mnist/test/0"}], "top_k": 4}
        reply = json.loads(ok_json(self, "POST", "/v1/attribute", body=snake))
        self.assertEqual(reply["results"][0]["proponents"][0]["sampleId"],
                         want.results[0].proponents[0].sample_id)
        self.assertEqual(reply["method"], "METHOD_EKFAC")
        self.assertEqual(reply["indexRows"], str(want.index_rows))  # int64 as a string

    def test_indexes_and_samples_equal_grpc(self) -> None:
        listed = json_format.Parse(ok_json(self, "GET", "/v1/indexes"),
                                   attribution_pb2.ListIndexesResponse())
        versions = self.reader.list_indexes()
        self.assertEqual([(v.name, v.version, v.state) for v in versions],
                         [(e.name, e.version, "SERVING") for e in listed.indexes])
        name = versions[0].name
        self.assertEqual(versions[0].description.index, name)
        got = json_format.Parse(ok_json(self, "GET", f"/v1/indexes/{name}"),
                                attribution_pb2.DescribeIndexResponse())
        want = self.reader.describe(index=name).proto
        for d in (got, want):  # the background checksum pass may move between the two calls
            d.ClearField("verification")
        assert_messages_close(self, got, want, rel_tol=0)
        for path in ("/v1/samples/fashion-mnist/train/3", "/v1/samples/fashion-mnist%2Ftrain%2F3"):
            sample = json_format.Parse(ok_json(self, "GET", path),
                                       attribution_pb2.GetSampleResponse())
            assert_messages_close(self, sample, self.reader.sample("fashion-mnist/train/3").proto,
                                  rel_tol=0)
        status, body = http("GET", "/v1/samples/fashion-mnist/train/99999999")
        self.assert_error(status, body, 404, "NOT_FOUND", "fashion-mnist/train/99999999")
        status, body = http("GET", "/v1/indexes/no-such-index")
        self.assert_error(status, body, 404, "NOT_FOUND", f"served: {name}")
        status, body = http("POST", "/v1/attribute", body=dict(QUERY, index="no-such-index"))
        self.assert_error(status, body, 404, "NOT_FOUND", f"served: {name}")
        self.assertEqual(self.reader.sample("fashion-mnist/train/3", index=name).row, 3)
        with self.assertRaises(tda.TdaError) as unknown:
            self.reader.attribute(ids=["fashion-mnist/test/0"], index="no-such-index")
        self.assertEqual(unknown.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_jobs_endpoints_equal_grpc(self) -> None:
        submitted = json.loads(ok_json(self, "POST", "/v1/jobs", token="operator",
                                       body={"kind": "sleep", "specJson": '{"seconds": 0.3}'}))
        job_id = int(submitted["id"])
        self.assertIn(submitted["state"], ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING"))
        self.assertEqual(submitted["submitter"], "operator")
        # Watch: newline-delimited JSON, one JobUpdate per line, the last one final.
        lines = ok_json(self, "GET", f"/v1/jobs/{job_id}:watch", token="operator").splitlines()
        updates = [json_format.Parse(line, jobs_pb2.JobUpdate()) for line in lines]
        self.assertGreaterEqual(len(updates), 2)
        self.assertEqual(updates[-1].job.state, jobs_pb2.JOB_STATE_SUCCEEDED)
        got = json_format.Parse(ok_json(self, "GET", f"/v1/jobs/{job_id}", token="operator"),
                                jobs_pb2.Job())
        assert_messages_close(self, got, self.operator.job(job_id).proto, rel_tol=0)
        listed = json_format.Parse(
            ok_json(self, "GET", "/v1/jobs?state=JOB_STATE_SUCCEEDED&limit=100", token="operator"),
            jobs_pb2.ListJobsResponse())
        self.assertIn(job_id, [j.id for j in listed.jobs])
        self.assertEqual([j.id for j in listed.jobs],
                         [j.id for j in self.operator.jobs(state="SUCCEEDED", limit=100)])
        # Cancelling a finished job: FAILED_PRECONDITION -> 400, as Google's transcoding maps it.
        status, body = http("POST", f"/v1/jobs/{job_id}:cancel", token="operator")
        self.assert_error(status, body, 400, "FAILED_PRECONDITION", "")
        running = json.loads(ok_json(self, "POST", "/v1/jobs", token="operator",
                                     body={"kind": "sleep", "specJson": '{"seconds": 60}'}))
        cancelled = json.loads(ok_json(self, "POST", f"/v1/jobs/{running['id']}:cancel",
                                       token="operator"))
        self.assertEqual(cancelled["id"], running["id"])
        self.assertEqual(list(self.operator.watch(int(running["id"]), timeout=60))[-1].job.state,
                         "CANCELLED")

    def test_schedules(self) -> None:
        created = json.loads(ok_json(self, "POST", "/v1/schedules", token="operator",
                                     body={"name": "nightly", "cron": "0 2 * * *", "kind": "sleep",
                                           "specJson": '{"seconds": 1}'}))
        listed = json.loads(ok_json(self, "GET", "/v1/schedules", token="operator"))
        self.assertIn(created["id"], [s["id"] for s in listed["schedules"]])
        ok_json(self, "DELETE", f"/v1/schedules/{created['id']}", token="operator")
        status, body = http("DELETE", f"/v1/schedules/{created['id']}", token="operator")
        self.assert_error(status, body, 404, "NOT_FOUND", "")

    def test_bad_json_is_400_with_a_message(self) -> None:
        status, body = http("POST", "/v1/attribute", raw=b'{"queries": [')
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "tda.v1.AttributeRequest")
        status, body = http("POST", "/v1/attribute", body={"queries": [], "no_such_field": 1})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "no_such_field")
        # The server's own validation, with the message gRPC callers get.
        status, body = http("POST", "/v1/attribute", body={**QUERY, "topK": 0})
        with self.assertRaises(tda.TdaError) as grpc_error:
            self.reader.attribute(ids=["fashion-mnist/test/0"], top_k=0)
        error = self.assert_error(status, body, 400, "INVALID_ARGUMENT", "top_k")
        self.assertEqual(error["message"], grpc_error.exception.message)

    def test_body_over_the_message_limit_is_413(self) -> None:
        status, body = http("POST", "/v1/attribute", raw=b" " * (CONFIG["max_message_bytes"] + 1))
        self.assert_error(status, body, 413, "RESOURCE_EXHAUSTED", "--max-message-bytes")
        ok_json(self, "POST", "/v1/attribute", raw=b" " * 1000 + json.dumps(QUERY).encode())

    def test_no_token_is_401_and_wrong_role_403(self) -> None:
        for method, path, body in (("GET", "/v1/indexes", None),
                                   ("POST", "/v1/attribute", QUERY),
                                   ("GET", "/v1/samples/fashion-mnist/test/0", None),
                                   ("GET", "/v1/jobs", None)):
            status, reply = http(method, path, body=body, token=None)
            self.assert_error(status, reply, 401, "UNAUTHENTICATED", "token")
        status, reply = http("POST", "/v1/jobs", token="reader",
                             body={"kind": "sleep", "specJson": '{"seconds": 1}'})
        self.assert_error(status, reply, 403, "PERMISSION_DENIED", "operator")
        request = urllib.request.Request(CONFIG["http"] + "/v1/indexes")
        request.add_header("Authorization", "Bearer tda_not_a_token")
        with self.assertRaises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(request, timeout=30)
        self.assertEqual(unknown.exception.code, 401)

    def test_self_influence_equals_grpc(self) -> None:
        want = self.reader.self_influence(top_k=4).proto
        for method, path, body in (("POST", "/v1/self-influence", {"topK": 4}),
                                   ("GET", "/v1/self-influence?top_k=4&method=METHOD_EKFAC", None)):
            got = json_format.Parse(ok_json(self, method, path, body=body),
                                    attribution_pb2.SelfInfluenceResponse())
            assert_messages_close(self, got, want, rel_tol=0)
        status, body = http("POST", "/v1/self-influence", body={"topK": 0})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "top_k must be in [1, 10000]")
        status, body = http("POST", "/v1/self-influence", body={"topK": 4}, token=None)
        self.assert_error(status, body, 401, "UNAUTHENTICATED", "token")

    def test_deadline_headers_set_the_calls_deadline(self) -> None:
        for header, value in (("grpc-timeout", "1n"), ("X-Timeout-Seconds", "0.000001")):
            status, body = http("POST", "/v1/attribute", body=QUERY, headers={header: value})
            self.assert_error(status, body, 504, "DEADLINE_EXCEEDED", "")
        for header, value in (("grpc-timeout", "30S"), ("grpc-timeout", "60000m"),
                              ("X-Timeout-Seconds", "30")):
            ok_json(self, "POST", "/v1/attribute", body=QUERY, headers={header: value})
        for header, value in (("grpc-timeout", "5x"), ("grpc-timeout", "123456789S"),
                              ("grpc-timeout", "S"), ("X-Timeout-Seconds", "-1"),
                              ("X-Timeout-Seconds", "soon")):
            status, body = http("POST", "/v1/attribute", body=QUERY, headers={header: value})
            self.assert_error(status, body, 400, "INVALID_ARGUMENT", header)

    def test_explorer_files_are_served_without_a_token(self) -> None:
        connection = http_client.HTTPConnection(urllib.parse.urlsplit(CONFIG["http"]).netloc,
                                                timeout=30)
        for path in ("/", "/explorer"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            self.assertEqual((response.status, response.getheader("Location")),
                             (302, "/explorer/"), path)
        for path, content_type, part in (
                ("/explorer/", "text/html", b'<script src="explorer.js"'),
                ("/explorer/index.html", "text/html", b"<title>"),
                ("/explorer/explorer.js", "text/javascript", b"/v1/attribute"),
                ("/explorer/explorer.css", "text/css", b"body")):
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            self.assertEqual(response.status, 200, path)
            self.assertTrue(response.getheader("Content-Type").startswith(content_type), path)
            self.assertIn("script-src 'self'", response.getheader("Content-Security-Policy"))
            self.assertIn(part, body)
        connection.close()
        status, body = http("GET", "/explorer/no-such-file.js", token=None)
        self.assert_error(status, body, 404, "NOT_FOUND", "/explorer/no-such-file.js")

    def test_unknown_route_is_404_json(self) -> None:
        status, body = http("GET", "/v1/nothing")
        self.assert_error(status, body, 404, "NOT_FOUND", "/v1/nothing")


if __name__ == "__main__":
    unittest.main(verbosity=2)
