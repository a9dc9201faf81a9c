"""`python -m ops.bench.console` in a quick mode produces its figures (speed is the
benchmark's business, not a test's: nothing here asserts a timing)."""

from __future__ import annotations

import json

import pytest
import redis

from ops.bench import console as bench


def test_the_console_benchmark_produces_its_figures(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = bench.Sizes(jobs=500, cuits=50, requests=5, warmups=1, profile=1)
    figures, profile_text = bench.run(redis_url, sizes)
    assert (figures["jobs"], figures["cuits"]) == (500, 50)
    assert figures["issued_jobs"] > 0
    for scenario in ("queued", "issued"):
        for name in ("batch_page", "batch_fragment", "batches_page", "api_batch", "healthz"):
            f = figures[scenario][name]
            assert 0 < f["median_ms"] <= f["p95_ms"] <= f["max_ms"], (scenario, name, f)
            assert f["bytes"] > 0
    # The fragment is the page's live part only.
    assert figures["queued"]["batch_fragment"]["bytes"] < figures["queued"]["batch_page"]["bytes"]
    assert figures["batch_page_p95_ms"] == figures["queued"]["batch_page"]["p95_ms"]
    assert figures["batch_page_vs_api"] > 0
    assert isinstance(figures["batch_page_ok"], bool)
    assert "function calls" in profile_text
    assert figures["profile_top"]
    # The printed report ends with one JSON line holding the same figures.
    bench.print_table(figures)
    print(json.dumps(figures))
    out = capsys.readouterr().out.strip().splitlines()
    assert "batch_page_p95_ms" in json.loads(out[-1])


def test_the_benchmark_leaves_no_keys(redis_url: str) -> None:
    sizes = bench.Sizes(jobs=40, cuits=4, requests=1, warmups=0, profile=0, issued=False)
    client = redis.Redis.from_url(redis_url)
    before = set(client.scan_iter(match="*bench-console*", count=1000))
    bench.run(redis_url, sizes)
    assert set(client.scan_iter(match="*bench-console*", count=1000)) == before
