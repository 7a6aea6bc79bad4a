"""tda.Client text queries against a real tda-server serving a tiny GPT's fortunes index
(started by tests/integration/http_python_client_test.cc).

Usage: client_fortunes_test.py CONFIG.json
"""

import unittest

import numpy as np

import tda
from tda_test_support import assert_messages_close, cli_query, load_config

CONFIG = load_config()
PROMPT, COMPLETION = "Q: Why did the chicken cross?\n", "A: To get to the other side."


class FortunesClientTest(unittest.TestCase):

    def test_text_query_equals_cli_json(self) -> None:
        with tda.Client(CONFIG["address"]) as client:
            got = client.attribute(texts=[(PROMPT, COMPLETION)], top_k=5)
            self.assertEqual(client.describe().model_kind, "gpt")
        want = cli_query(CONFIG, ["--prompt", PROMPT, "--completion", COMPLETION, "--top-k", "5"])
        result = got.results[0]
        self.assertEqual(result.query_id, "text:0")
        self.assertEqual(len(result.proponents), 5)
        self.assertEqual([h.sample_id for h in result.proponents],
                         [h.sample_id for h in want.results[0].proponents])
        np.testing.assert_allclose([h.score for h in result.opponents],
                                   [h.score for h in want.results[0].opponents], rtol=1e-5)
        self.assertTrue(all(h.sample_id.startswith("fortunes/") for h in result.proponents))
        self.assertIsNotNone(result.proponents[0].shared_span)
        assert_messages_close(self, got.proto, want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
