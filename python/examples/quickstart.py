"""Quickstart: the README's Fashion-MNIST and fortunes queries from Python, cell by cell.

Run it against a tda-server serving a Fashion-MNIST index and/or one serving a fortunes GPT
index (README "From Python"):

    export PYTHONPATH=$PWD/python:$PWD/build/python TDA_TOKEN=$(cat token.txt)
    python3 python/examples/quickstart.py --fashion-mnist 127.0.0.1:50051 --fortunes 127.0.0.1:50052

The token comes from $TDA_TOKEN (unset: none, for a server without --auth-tokens).
"""

import argparse
import os

import tda


def fashion_mnist(address: str, token: str) -> None:
    # %% Connect and see what the server holds.
    with tda.Client(address, token=token) as client:
        index = client.describe()
        print(f"{address}: {index.rows} rows of {index.dim} {index.dtype}, {index.model_kind} model")

        # %% Which training images drove the prediction for test image 12?
        result = client.attribute(ids=["fashion-mnist/test/12"], top_k=3).results[0]
        print(f"{result.query_id}: label {index.class_names[result.label]}, predicted "
              f"{index.class_names[result.predicted_label]}, loss {result.loss:.4f}")
        for hit in result.proponents + result.opponents:
            print(f"  {hit.score:+.4e}  {hit.sample_id:26} {index.class_names[hit.label]}")
        for total in result.source_totals:
            print(f"  per source: {total.source} sum {total.sum:+.4e} over {total.count} rows")

        # %% The images the model memorised most (highest self-influence).
        ranked = client.self_influence(top_k=3)
        print(f"self-influence of {ranked.count} rows ({ranked.method}), median {ranked.median:.4g}:")
        for entry in ranked.entries:
            print(f"  {entry.score:.4e}  {entry.sample_id:26} {index.class_names[entry.label]}")


def fortunes(address: str, token: str) -> None:
    # %% Which fortunes made the model complete the prompt this way?
    prompt, completion = "Q: Why did the chicken cross?\n", "A: To get to the other side."
    with tda.Client(address, token=token) as client:
        result = client.attribute(texts=[(prompt, completion)], top_k=3,
                                  token_scores=True).results[0]
        print(f"{address}: loss of {completion!r} given the prompt: {result.loss:.4f}")
        for hit in result.proponents:
            span = hit.shared_span
            start = span.document_offset if span is not None else 0  # bytes of hit.text
            shared = hit.text.encode()[start:start + span.length].decode(errors="replace") \
                if span is not None else ""
            top = int(hit.token_scores.argmax()) if len(hit.token_scores) else -1
            print(f"  {hit.score:+.4e}  {hit.sample_id:24} shares {shared!r}; "
                  f"most influential byte {top} of {len(hit.text)}")

        # %% The documents the model memorised most, whole documents ranked.
        for entry in client.self_influence(top_k=3, by_document=True).entries:
            print(f"  self-influence {entry.score:.4e}  {entry.sample_id:24} {entry.preview[:40]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-mnist", metavar="HOST:PORT", help="a Fashion-MNIST server")
    parser.add_argument("--fortunes", metavar="HOST:PORT", help="a fortunes GPT server")
    args = parser.parse_args()
    if args.fashion_mnist is None and args.fortunes is None:
        parser.error("give --fashion-mnist, --fortunes or both")
    token = os.environ.get("TDA_TOKEN") or None
    if args.fashion_mnist is not None:
        fashion_mnist(args.fashion_mnist, token)
    if args.fortunes is not None:
        fortunes(args.fortunes, token)


if __name__ == "__main__":
    main()
