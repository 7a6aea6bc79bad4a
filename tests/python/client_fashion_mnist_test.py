"""tda.Client against a real tda-server serving a small Fashion-MNIST index with tokens and a
job database (started by tests/integration/http_python_client_test.cc).

Usage: client_fashion_mnist_test.py CONFIG.json
"""

import time
import unittest

import grpc
import numpy as np

import tda
from tda_test_support import assert_messages_close, cli_query, cli_self_influence, load_config

CONFIG = load_config()
IDS = ["fashion-mnist/test/0", "fashion-mnist/test/7"]


class FashionMnistClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        cls.reader = tda.Client(CONFIG["address"], token=CONFIG["tokens"]["reader"])
        cls.operator = tda.Client(CONFIG["address"], token=CONFIG["tokens"]["operator"])

    def test_id_query_equals_cli_json(self) -> None:
        got = self.reader.attribute(ids=IDS, top_k=5, return_scores=True)
        want = cli_query(CONFIG, [arg for i in IDS for arg in ("--id", i)] + ["--top-k", "5"])
        self.assertEqual(got.method, "ekfac")
        self.assertEqual(got.index_rows, want.index_rows)
        self.assertEqual([r.query_id for r in got.results], IDS)
        for result, expected in zip(got.results, want.results):
            self.assertEqual([h.sample_id for h in result.proponents],
                             [h.sample_id for h in expected.proponents])
            self.assertEqual([h.sample_id for h in result.opponents],
                             [h.sample_id for h in expected.opponents])
            np.testing.assert_allclose([h.score for h in result.proponents],
                                       [h.score for h in expected.proponents], rtol=1e-5)
            self.assertEqual(len(result.proponents), 5)
            # Every row's score as numpy; the top proponent is its largest entry.
            self.assertEqual(result.scores.dtype, np.float32)
            self.assertEqual(result.scores.shape, (got.index_rows,))
            top = result.proponents[0]
            self.assertEqual(int(np.nanargmax(result.scores)), top.row)
            self.assertAlmostEqual(float(result.scores[top.row]), top.score,
                                   delta=1e-6 * abs(top.score))
        # Field by field, every field of the answer (the CLI's JSON has no scores).
        response = type(got.proto)()
        response.CopyFrom(got.proto)
        for r in response.results:
            r.ClearField("scores")
        assert_messages_close(self, response, want)

    def test_features_query_equals_id_query(self) -> None:
        sample = self.reader.sample(IDS[0])
        self.assertEqual(sample.sample_id, IDS[0])
        self.assertIsNone(sample.row)  # a test image is not a training row
        self.assertEqual(sample.features.shape, (784,))
        by_features = self.reader.attribute(features=sample.features[np.newaxis, :],
                                            labels=sample.label, top_k=3)
        by_id = self.reader.attribute(ids=[IDS[0]], top_k=3)
        self.assertEqual([h.sample_id for h in by_features.results[0].proponents],
                         [h.sample_id for h in by_id.results[0].proponents])
        self.assertEqual(by_features.results[0].query_id, "raw:0")

    def test_describe_and_training_sample(self) -> None:
        description = self.reader.describe()
        self.assertEqual(description.model_kind, "mlp")
        self.assertEqual(len(description.class_names), 10)
        self.assertIn("ekfac", description.methods)
        self.assertEqual(description.rows, self.reader.attribute(ids=IDS[:1]).index_rows)
        training = self.reader.sample("fashion-mnist/train/3")
        self.assertEqual(training.row, 3)
        self.assertEqual(training.class_name, description.class_names[training.label])

    def test_job_submitted_and_watched_completes(self) -> None:
        job = self.operator.submit("sleep", {"seconds": 0.5})
        self.assertEqual(job.kind, "sleep")
        self.assertEqual(job.submitter, "operator")
        updates = list(self.operator.watch(job.id, timeout=60))
        self.assertGreaterEqual(len(updates), 2)
        self.assertEqual(updates[-1].job.state, "SUCCEEDED")
        self.assertEqual(updates[-1].job.progress, 1.0)
        self.assertTrue(all(u.job.id == job.id for u in updates))
        progress = [u.job.progress for u in updates]
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(self.operator.job(job.id).state, "SUCCEEDED")
        self.assertIn(job.id, [j.id for j in self.operator.jobs(state="SUCCEEDED")])

    def test_cancelled_job_ends_cancelled(self) -> None:
        job = self.operator.submit("sleep", {"seconds": 60})
        self.operator.cancel(job.id)
        final = list(self.operator.watch(job.id, timeout=60))[-1].job
        self.assertEqual(final.state, "CANCELLED")

    def test_bad_request_raises_invalid_argument_with_the_servers_message(self) -> None:
        with self.assertRaises(tda.TdaError) as caught:
            self.reader.attribute(ids=IDS, top_k=0)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(caught.exception.code_name, "INVALID_ARGUMENT")
        self.assertIn("top_k", caught.exception.message)
        with self.assertRaises(tda.TdaError) as unknown:
            self.reader.attribute(ids=["fashion-mnist/test/99999999"])
        self.assertEqual(unknown.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("fashion-mnist/test/99999999", unknown.exception.message)

    def test_self_influence_equals_cli_json_and_is_kept(self) -> None:
        started = time.monotonic()
        first = self.reader.self_influence(top_k=5)
        first_seconds = time.monotonic() - started
        started = time.monotonic()
        again = self.reader.self_influence(top_k=5)
        again_seconds = time.monotonic() - started
        print(f"self-influence of {first.count} rows: first call {first_seconds * 1000:.1f} ms, "
              f"kept {again_seconds * 1000:.1f} ms")
        want = cli_self_influence(CONFIG, ["--top", "5"])
        self.assertEqual(first.method, "ekfac")
        self.assertEqual(first.count, want["rows"])
        self.assertEqual([e.sample_id for e in first.entries], [t["id"] for t in want["top"]])
        self.assertEqual([e.row for e in first.entries], [t["row"] for t in want["top"]])
        self.assertEqual([e.label for e in first.entries], [t["label"] for t in want["top"]])
        np.testing.assert_allclose([e.score for e in first.entries],
                                   [t["self_influence"] for t in want["top"]], rtol=1e-5)
        self.assertEqual(again, first)
        scores = [e.score for e in first.entries]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertGreater(scores[-1], first.median)
        # Another method and damping: its own values (gradient-dot has no curvature).
        plain = self.reader.self_influence(top_k=5, method="gradient-dot")
        self.assertEqual(plain.method, "gradient-dot")
        self.assertEqual([e.sample_id for e in plain.entries],
                         [t["id"] for t in cli_self_influence(
                             CONFIG, ["--top", "5", "--method", "gradient-dot"])["top"]])
        damped = self.reader.self_influence(top_k=5, damping=10.0)
        self.assertLess(damped.entries[0].score, first.entries[0].score)

    def test_self_influence_bad_requests(self) -> None:
        for kwargs, part in (({"top_k": 0}, "top_k must be in [1, 10000], got 0"),
                             ({"top_k": 10001}, "top_k must be in [1, 10000], got 10001"),
                             ({"damping": -1.0}, "relative damping must be a finite number >= 0"),
                             ({"absolute_damping": float("nan")}, "absolute damping")):
            with self.assertRaises(tda.TdaError) as caught:
                self.reader.self_influence(**kwargs)
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT, kwargs)
            self.assertIn(part, caught.exception.message)
        with self.assertRaises(ValueError):
            self.reader.self_influence(method="newton")

    def test_schedules_created_listed_and_deleted(self) -> None:
        created = self.operator.create_schedule("hourly-sleep", "0 * * * *", "sleep",
                                                {"seconds": 1})
        self.assertEqual((created.name, created.cron, created.kind, created.spec),
                         ("hourly-sleep", "0 * * * *", "sleep", {"seconds": 1}))
        self.assertIn(created.id, [s.id for s in self.operator.list_schedules()])
        self.operator.delete_schedule(created.id)
        self.assertNotIn(created.id, [s.id for s in self.operator.list_schedules()])
        with self.assertRaises(tda.TdaError) as gone:
            self.operator.delete_schedule(created.id)
        self.assertEqual(gone.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(tda.TdaError) as bad_cron:
            self.operator.create_schedule("bad", "not a cron", "sleep", {"seconds": 1})
        self.assertEqual(bad_cron.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(tda.TdaError) as denied:
            self.reader.create_schedule("reader", "0 * * * *", "sleep", {"seconds": 1})
        self.assertEqual(denied.exception.code, grpc.StatusCode.PERMISSION_DENIED)

    def test_admin_calls(self) -> None:
        # This server serves one index (--index): it reloads, but refuses to unload the index it
        # could not load again (a --repository server unloads: metrics_test).
        with tda.Client(CONFIG["address"], token=CONFIG["tokens"]["admin"]) as admin:
            served = self.reader.list_indexes()
            self.assertEqual(len(served), 1)
            name = served[0].name
            self.assertEqual(admin.reload_tokens(), len(CONFIG["tokens"]))
            with self.assertRaises(tda.TdaError) as denied:
                self.reader.unload_index(name)
            self.assertEqual(denied.exception.code, grpc.StatusCode.PERMISSION_DENIED)
            with self.assertRaises(tda.TdaError) as refused:
                admin.unload_index(name)
            self.assertEqual(refused.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("--repository", refused.exception.message)
            reloaded = admin.reload_indexes()
            self.assertEqual([(v.name, v.state) for v in reloaded], [(name, "SERVING")])
            self.assertEqual(self.reader.describe().rows, served[0].description.rows)

    def test_auth_errors(self) -> None:
        with self.assertRaises(tda.TdaError) as denied:
            self.reader.submit("sleep", {"seconds": 1})
        self.assertEqual(denied.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("operator", denied.exception.message)
        with tda.Client(CONFIG["address"]) as anonymous:
            with self.assertRaises(tda.TdaError) as refused:
                anonymous.describe()
        self.assertEqual(refused.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertNotIn(CONFIG["tokens"]["reader"], repr(self.reader))


if __name__ == "__main__":
    unittest.main(verbosity=2)
