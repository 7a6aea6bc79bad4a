"""Scrapes a real tda-server's GET /metrics (--metrics-listen; started by
tests/integration/metrics_test.cc) over HTTP and parses it with Debian's
python3-prometheus-client (a parser tda did not write), then checks it against what the test
did: request counts by rpc, index and code; every request histogram cumulative with +Inf ==
_count == the requests of that rpc and index; the index gauges and counters; the jobs by state;
the query gauges and process metrics present; HELP on every family; any other path 404.

Usage: metrics_check.py EXPECTED.json, where EXPECTED holds
  {"url": "http://HOST:PORT/metrics",
   "samples": [{"name": "tda_requests_total", "labels": {...}, "value": 3}, ...]}
Exits 0 when every check passes, else 1 naming each failure.
"""

import json
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    with open(sys.argv[1]) as f:
        expected = json.load(f)
    url = expected["url"]
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode("utf-8")
    scrape_ms = (time.monotonic() - started) * 1000
    failures = []
    if not content_type.startswith("text/plain; version=0.0.4"):
        failures.append(f"Content-Type {content_type!r} is not the text format 0.0.4")

    families = list(text_string_to_metric_families(text))
    samples = {}  # (sample name, sorted label items) -> value
    for family in families:
        if not family.documentation:
            failures.append(f"family {family.name} has no HELP")
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    for want in expected["samples"]:
        key = (want["name"], tuple(sorted(want["labels"].items())))
        got = samples.get(key)
        if got != want["value"]:
            failures.append(f"{want['name']}{want['labels']}: expected {want['value']}, got {got}")

    # Histograms: buckets cumulative, +Inf == _count, and _count == the calls counted.
    requests = {}
    for (name, labels), value in samples.items():
        if name == "tda_requests_total":
            label_map = dict(labels)
            series = (label_map["rpc"], label_map["index"])
            requests[series] = requests.get(series, 0) + value
    histograms = 0
    for family in families:
        if family.type != "histogram":
            continue
        by_series = {}
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            entry = by_series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
        for series, entry in by_series.items():
            histograms += 1
            counts = [count for _, count in sorted(entry["buckets"])]
            if any(b < a for a, b in zip(counts, counts[1:])):
                failures.append(f"{family.name}{dict(series)}: buckets not cumulative: {counts}")
            if not counts or counts[-1] != entry.get("count"):
                failures.append(f"{family.name}{dict(series)}: +Inf bucket != _count")
            if family.name == "tda_request_duration_seconds":
                labels = dict(series)
                calls = requests.get((labels["rpc"], labels["index"]))
                if entry.get("count") != calls:
                    failures.append(f"{family.name}{labels}: _count {entry.get('count')} but "
                                    f"{calls} requests counted")
    if histograms == 0:
        failures.append("no histogram series")

    # Every index with computed batches has had its rows scanned.
    for (name, labels), value in samples.items():
        if name == "tda_attribute_batch_queries_count" and value > 0:
            scanned = samples.get(("tda_scan_bytes_total", labels), 0)
            if not scanned > 0:
                failures.append(f"{dict(labels)}: {value} batches but tda_scan_bytes_total {scanned}")

    for name in ("tda_query_queue_depth", "tda_query_slots_in_use"):
        if samples.get((name, ())) != 0:
            failures.append(f"{name} is {samples.get((name, ()))}, expected 0 (nothing running)")
    if not samples.get(("process_resident_memory_bytes", ()), 0) > 1 << 20:
        failures.append("process_resident_memory_bytes missing or under 1 MiB")
    start = samples.get(("process_start_time_seconds", ()), 0)
    if not time.time() - 3600 < start <= time.time():
        failures.append(f"process_start_time_seconds {start} is not within the last hour")

    other = url.rsplit("/", 1)[0] + "/v1/indexes"
    try:
        urllib.request.urlopen(other, timeout=10)
        failures.append(f"GET {other} answered 200, expected 404")
    except urllib.error.HTTPError as error:
        if error.code != 404:
            failures.append(f"GET {other} answered {error.code}, expected 404")

    for failure in failures:
        print("FAIL:", failure)
    print(f"metrics_check: {len(families)} families, {len(samples)} samples, "
          f"{histograms} histogram series, {len(text)} bytes scraped in {scrape_ms:.1f} ms, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
