"""Runs python/examples/quickstart.py against the harness's server (a Fashion-MNIST or a
fortunes index; started by tests/integration/http_python_client_test.cc) and checks that it
prints what tda.Client answers.

Usage: quickstart_test.py CONFIG.json
"""

import os
import subprocess
import sys
import unittest

import tda
from tda_test_support import load_config

CONFIG = load_config()
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python",
                       "examples", "quickstart.py")


class QuickstartTest(unittest.TestCase):

    def test_example_prints_the_servers_answers(self) -> None:
        token = CONFIG.get("tokens", {}).get("reader")
        with tda.Client(CONFIG["address"], token=token) as client:
            text_model = client.describe().model_kind == "gpt"
            if text_model:
                answer = client.attribute(texts=[("Q: Why did the chicken cross?\n",
                                                  "A: To get to the other side.")], top_k=3)
                ranked = client.self_influence(top_k=3, by_document=True)
            else:
                answer = client.attribute(ids=["fashion-mnist/test/12"], top_k=3)
                ranked = client.self_influence(top_k=3)
        flag = "--fortunes" if text_model else "--fashion-mnist"
        env = {**os.environ, "TDA_TOKEN": token or ""}
        printed = subprocess.run([sys.executable, EXAMPLE, flag, CONFIG["address"]], env=env,
                                 check=True, capture_output=True, text=True, timeout=120).stdout
        print(printed)
        for hit in answer.results[0].proponents:
            self.assertIn(f"{hit.score:+.4e}  {hit.sample_id}", printed)
        for entry in ranked.entries:
            self.assertIn(entry.sample_id, printed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
