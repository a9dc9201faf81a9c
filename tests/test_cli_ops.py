"""The operations commands (`tfq enqueue`, `status`, `batch`, `lanes`, `failed`) against a
real Redis, without a worker: jobs stay queued, and the tests play the worker's part
through `LaneStore` where a job must be issued, rejected or unknown."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from ops.testkit.examples import EXAMPLES_DATE, EXAMPLES_DIR, load_examples, shift_dates
from ops.testkit.harness import unique_prefix
from producers.cli import app
from producers.cli.render import Table, duration, redis_where
from producers.client import InvoiceQueue
from tests.conftest import MONO_CUIT, RI_CUIT
from worker.invoice.rules import argentina_today
from worker.settings import get_settings
from worker.store.queries import lane_row

TODAY = argentina_today()
OTHER_CUIT = "30712293841"  # a valid CUIT with no jobs

runner = CliRunner()


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[InvoiceQueue]:
    """A queue under a fresh key prefix, which the CLI (in this process) also uses."""
    prefix = unique_prefix("cli")
    monkeypatch.setenv("TFQ_REDIS_URL", redis_url)
    monkeypatch.setenv("TFQ_KEY_PREFIX", prefix)
    get_settings.cache_clear()  # settings are read once per process
    q = InvoiceQueue(redis_url, key_prefix=prefix)
    yield q
    get_settings.cache_clear()
    keys = list(q.redis.scan_iter(match=prefix + "*"))
    if keys:
        q.redis.delete(*keys)


def tfq(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def examples() -> dict[str, dict[str, Any]]:
    return load_examples(TODAY)


def write_jsonl(tmp_path: Path, lines: list[str], name: str = "jobs.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def good_lines() -> list[str]:
    return [json.dumps(e) for e in examples().values()]


def finish_head(q: InvoiceQueue, cuit: str, status: str, **fields: Any) -> str:
    """Play the worker: claim the lane, give its head job `status`, release it."""
    leases = dict(q.store.claim(100, 30, 0, "test").leases)
    (job_id,) = q.store.head(cuit, 1)
    assert q.store.transition(cuit, leases[cuit], job_id, status, fields)
    for claimed, token in leases.items():  # give back every lane the claim took
        q.store.release(claimed, token, not_before=0, gap_seconds=0)
    return job_id


# --- enqueue --------------------------------------------------------------------------


def test_enqueue_queues_good_lines_and_names_bad_ones(queue: InvoiceQueue, tmp_path: Path) -> None:
    good = good_lines()
    bad = json.loads(good[1])
    bad["invoice"]["comprobante"]["moneda"] = "XXX"
    bad["invoice"]["comprobante"]["external_reference"] = "BAD-1"
    lines = [good[0], "{not json", json.dumps(bad), *good[1:], good[0]]
    path = write_jsonl(tmp_path, lines)

    result = tfq("enqueue", str(path), "--batch", "nightly")

    assert result.exit_code == 1, result.output
    assert "2: " in result.output
    assert "3: invoice.comprobante.moneda: " in result.output
    assert "9: invoice.comprobante.external_reference: duplicate of line 1" in result.output
    assert "9 jobs: 6 accepted, 0 duplicates, 3 refused" in result.output
    assert "batch nightly" in result.output
    for env in examples().values():
        assert queue.job_id(env["cuit"], env["invoice"]["comprobante"]["external_reference"])
    assert queue.job_id(RI_CUIT, "BAD-1") is None
    batch = queue.batch("nightly")
    assert batch is not None
    assert batch["total"] == 6
    assert batch["counts"]["queued"] == 6


def test_enqueue_again_reports_duplicates_by_line(queue: InvoiceQueue, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, good_lines())
    first = tfq("enqueue", str(path), "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)
    assert doc["counts"] == {"accepted": 6, "duplicates": 0, "refused": 0, "not_queued": 0}
    ids = {a["line"]: a["job_id"] for a in doc["accepted"]}

    again = tfq("enqueue", str(path))
    assert again.exit_code == 0, again.output
    assert "6 jobs: 0 accepted, 6 duplicates, 0 refused" in again.output
    assert f"1: duplicate: cuit {RI_CUIT} already has external_reference ORD-1001" in again.output
    assert f"(job {ids[1]})" in again.output

    as_json = json.loads(tfq("enqueue", str(path), "--json").output)
    assert [d["job_id"] for d in as_json["duplicates"]] == [ids[n] for n in range(1, 7)]
    assert as_json["batch"] is None


def test_enqueue_strict_queues_nothing_when_a_line_is_bad(
    queue: InvoiceQueue, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path, [*good_lines(), "[1, 2]"])
    result = tfq("enqueue", str(path), "--strict", "--batch", "strict")
    assert result.exit_code == 1
    assert "7: an array is not a job" in result.output
    assert "7 jobs: 6 valid, 1 refused; nothing was queued (--strict)" in result.output
    assert queue.job_id(RI_CUIT, "ORD-1001") is None
    assert queue.batch("strict") is None

    path.write_text("\n".join(good_lines()) + "\n")
    assert tfq("enqueue", str(path), "--strict").exit_code == 0
    assert queue.job_id(RI_CUIT, "ORD-1001") is not None


def test_enqueue_csv_and_stdin(queue: InvoiceQueue, tmp_path: Path) -> None:
    with (EXAMPLES_DIR / "bulk.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [rows[0], *(shift_dates(row, TODAY - EXAMPLES_DATE) for row in rows[1:])]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = tmp_path / "orders.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    refs = {row[rows[0].index("comprobante.external_reference")] for row in rows[1:]}

    result = tfq("enqueue", str(path), "--batch", "csv", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["counts"]["accepted"] == len(refs)
    assert doc["accepted"][0]["line"] == 2  # the header is line 1

    piped = tfq("enqueue", "-", "--format", "jsonl", input="\n".join(good_lines()) + "\n")
    assert piped.exit_code == 0, piped.output
    assert "6 jobs: 6 accepted" in piped.output


def test_enqueue_usage_and_file_errors(queue: InvoiceQueue, tmp_path: Path) -> None:
    missing = tfq("enqueue", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    assert "No such file" in missing.output
    assert "Traceback" not in missing.output

    path = write_jsonl(tmp_path, good_lines())
    bad_batch = tfq("enqueue", str(path), "--batch", "has spaces")
    assert bad_batch.exit_code == 2
    assert "--batch" in bad_batch.output
    assert tfq("enqueue", str(path), "--format", "xml").exit_code == 2


# --- status ---------------------------------------------------------------------------


def test_status_by_id_and_by_key(queue: InvoiceQueue) -> None:
    env = examples()["factura_a"]
    job = queue.submit(env, batch="b1")
    queue.submit(examples()["factura_dolares"])  # same lane, behind it

    by_id = tfq("status", job.job_id)
    assert by_id.exit_code == 0, by_id.output
    assert "status" in by_id.output
    assert f"queued, 1 of 2 in lane {RI_CUIT}" in by_id.output
    assert "ORD-1001" in by_id.output

    by_key = tfq("status", "--cuit", RI_CUIT, "--ref", "ORD-1001", "--json")
    assert by_key.exit_code == 0, by_key.output
    doc = json.loads(by_key.output)
    assert doc["job_id"] == job.job_id
    assert doc["status"] == "queued"
    assert doc["batch"] == "b1"
    assert doc["lane_position"] == 1


def test_status_of_issued_rejected_and_paused_jobs(queue: InvoiceQueue) -> None:
    issued = queue.submit(examples()["factura_a"]).job_id
    rejected = queue.submit(examples()["factura_dolares"]).job_id
    waiting = queue.submit(examples()["factura_c"]).job_id
    finish_head(queue, RI_CUIT, "issued", numero=74, cae="75000000000001", test_mode="0")
    finish_head(queue, RI_CUIT, "rejected", errors=["[10016] El numero no es el siguiente"])
    queue.store.pause(MONO_CUIT, "quota used up")

    out = tfq("status", issued).output
    assert "issued" in out
    assert "00003-00000074" in out
    assert "75000000000001" in out
    out = tfq("status", rejected).output
    assert "rejected" in out
    assert "[10016] El numero no es el siguiente" in out
    out = tfq("status", waiting).output
    assert "paused (lane paused: quota used up)" in out


def test_status_errors(queue: InvoiceQueue) -> None:
    missing = tfq("status", "0123456789abcdef")
    assert missing.exit_code == 1
    assert "no job 0123456789abcdef" in missing.output
    as_json = tfq("status", "0123456789abcdef", "--json")
    assert as_json.exit_code == 1
    assert "no job" in json.loads(as_json.output)["error"]

    unknown_key = tfq("status", "--cuit", RI_CUIT, "--ref", "NOPE")
    assert unknown_key.exit_code == 1
    assert "external_reference NOPE" in unknown_key.output

    assert tfq("status").exit_code == 2
    only_cuit = tfq("status", "--cuit", RI_CUIT)
    assert only_cuit.exit_code == 2
    assert "--ref" in only_cuit.output
    assert tfq("status", "abc", "--cuit", RI_CUIT, "--ref", "X").exit_code == 2
    bad_cuit = tfq("status", "--cuit", "20111111111", "--ref", "X")
    assert bad_cuit.exit_code == 2
    assert "check digit" in bad_cuit.output


# --- batch ----------------------------------------------------------------------------


def test_batch_counts_progress_and_eta(queue: InvoiceQueue) -> None:
    report = queue.submit_many(examples().values(), batch="nightly")
    assert len(report.accepted) == 6
    finish_head(queue, MONO_CUIT, "issued", numero=1, cae="75000000000009", test_mode="0")

    out = tfq("batch", "nightly")
    assert out.exit_code == 0, out.output
    assert "batch nightly: 1 of 6 done (16%), ETA " in out.output
    assert "5 queued, 0 sending, 0 unknown, 1 issued, 0 rejected" in out.output

    doc = json.loads(tfq("batch", "nightly", "--json").output)
    assert doc["counts"]["issued"] == 1
    assert doc["total"] == 6
    assert doc["eta_seconds"] >= 0

    queue.store.pause(RI_CUIT, "quota used up")
    assert "1 of its lanes are paused" in tfq("batch", "nightly").output


def test_batch_watch_ends_when_done(queue: InvoiceQueue) -> None:
    queue.submit(examples()["factura_c"], batch="small")
    finish_head(queue, MONO_CUIT, "issued", numero=1, cae="75000000000009", test_mode="0")

    watched = tfq("batch", "small", "--watch", "--interval", "0.1")
    assert watched.exit_code == 0, watched.output
    assert "batch small: 1/1 done" in watched.output
    assert "ETA done" in watched.output
    doc = json.loads(tfq("batch", "small", "--watch", "--json").output)
    assert doc["done"] == doc["total"] == 1


def test_batch_unknown(queue: InvoiceQueue) -> None:
    result = tfq("batch", "nope")
    assert result.exit_code == 1
    assert "no batch nope" in result.output


# --- lanes ----------------------------------------------------------------------------


def test_lanes_sorted_by_depth_with_pause_and_lease(queue: InvoiceQueue) -> None:
    queue.submit_many(examples().values())  # RI: 5 jobs, MONO: 1
    queue.store.pause(MONO_CUIT, "quota used up")
    claims = queue.store.claim(100, 30, 0, "worker-1")
    assert [cuit for cuit, _ in claims.leases] == [RI_CUIT]

    result = tfq("lanes")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:6] == ["CUIT", "depth", "state", "next", "slot", "paused"]
    assert lines[1].split()[:3] == [RI_CUIT, "5", "sending"]
    assert "yes, worker-1" in lines[1]
    assert lines[2].split()[:3] == [MONO_CUIT, "1", "paused"]
    assert "quota used up" in lines[2]
    assert "2 lanes: 2 with jobs (6 queued), 1 paused, 1 sending" in result.output

    limited = tfq("lanes", "--limit", "1", "--json")
    doc = json.loads(limited.output)
    assert doc["lanes"] == 2
    assert [row["cuit"] for row in doc["rows"]] == [RI_CUIT]
    assert doc["rows"][0]["leased"] is True
    assert doc["rows"][0]["lease_owner"] == "worker-1"
    assert doc["paused"] == 1


def test_lanes_pause_and_resume(queue: InvoiceQueue) -> None:
    queue.submit(examples()["factura_c"])
    paused = tfq("lanes", "pause", MONO_CUIT, "--reason", "annual closing")
    assert paused.exit_code == 0, paused.output
    assert f"paused lane {MONO_CUIT} (1 job waiting): annual closing" in paused.output
    assert queue.store.lane_state(MONO_CUIT)["paused"] == "annual closing"
    doc = json.loads(tfq("lanes", "--json").output)
    assert doc["rows"][0]["status"] == "paused"
    assert doc["rows"][0]["paused_reason"] == "annual closing"

    resumed = tfq("lanes", "resume", MONO_CUIT)
    assert resumed.exit_code == 0, resumed.output
    assert f"resumed lane {MONO_CUIT}" in resumed.output
    assert "paused" not in queue.store.lane_state(MONO_CUIT)
    assert json.loads(tfq("lanes", "--json").output)["rows"][0]["status"] == "ready"

    again = json.loads(tfq("lanes", "resume", MONO_CUIT, "--json").output)
    assert again == {"cuit": MONO_CUIT, "was_paused": False, "depth": 1}


def test_lanes_pause_of_a_cuit_without_jobs_and_bad_input(queue: InvoiceQueue) -> None:
    assert tfq("lanes", "pause", OTHER_CUIT).exit_code == 0
    row = json.loads(tfq("lanes", "--json").output)["rows"][0]
    assert row["cuit"] == OTHER_CUIT
    assert row["paused_reason"] == "paused by an operator"

    bad = tfq("lanes", "pause", "2011111111")
    assert bad.exit_code == 2
    assert "must be 11 digits" in bad.output
    assert tfq("lanes", "resume", "20111111111").exit_code == 2
    assert tfq("lanes", "pause", OTHER_CUIT, "--reason", " ").exit_code == 2


def test_lanes_empty(queue: InvoiceQueue) -> None:
    result = tfq("lanes")
    assert result.exit_code == 0
    assert "0 lanes" in result.output


# --- failed ---------------------------------------------------------------------------


def test_failed_lists_rejected_and_unknown_newest_first(queue: InvoiceQueue) -> None:
    queue.submit_many(examples().values())
    rejected = finish_head(
        queue, RI_CUIT, "rejected", errors=["[10016] El numero no es el siguiente"]
    )
    unknown = finish_head(
        queue,
        MONO_CUIT,
        "unknown",
        numero=7,
        last_error="read timeout after sending",
        last_messages=json.dumps(["timeout"]),
    )
    finish_head(queue, RI_CUIT, "issued", numero=1, cae="75000000000001", test_mode="0")

    result = tfq("failed")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert unknown in lines[1]
    assert "reconciling" in lines[1]
    assert "00002-00000007" in lines[1]
    assert rejected in lines[2]
    assert "[10016] El numero no es el siguiente" in lines[2]
    assert "2 jobs rejected or unknown" in result.output

    doc = json.loads(tfq("failed", "--limit", "1", "--json").output)
    assert doc["total"] == 2
    assert [j["job_id"] for j in doc["jobs"]] == [unknown]
    assert doc["jobs"][0]["messages"] == ["timeout"]
    assert doc["jobs"][0]["numero"] == 7
    assert "1 newest shown" in tfq("failed", "--limit", "1").output


def test_failed_when_none(queue: InvoiceQueue) -> None:
    assert tfq("failed").output.strip() == "0 jobs rejected or unknown"
    assert json.loads(tfq("failed", "--json").output) == {"total": 0, "shown": 0, "jobs": []}


# --- errors and the real entry point --------------------------------------------------


def test_unreachable_redis_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TFQ_REDIS_URL", "redis://user:secret@127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        path = write_jsonl(tmp_path, good_lines())
        for args in (
            ["lanes"],
            ["failed"],
            ["batch", "x"],
            ["status", "x"],
            ["enqueue", str(path)],
        ):
            result = tfq(*args)
            assert result.exit_code == 1, (args, result.output)
            assert "error: Redis at redis://127.0.0.1:1/0" in result.output
            assert "secret" not in result.output
            assert "Traceback" not in result.output
        doc = json.loads(tfq("lanes", "--json").output)
        assert "Redis at" in doc["error"]
    finally:
        get_settings.cache_clear()


def test_commands_in_a_subprocess_with_env(redis_url: str, tmp_path: Path) -> None:
    prefix = unique_prefix("cli")
    env = {**os.environ, "TFQ_REDIS_URL": redis_url, "TFQ_KEY_PREFIX": prefix}
    path = write_jsonl(tmp_path, good_lines())
    client = redis.Redis.from_url(redis_url)
    try:

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "producers.cli", *args],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        enqueued = run("enqueue", str(path), "--batch", "sub")
        assert enqueued.returncode == 0, enqueued.stderr
        assert "6 accepted" in enqueued.stdout
        doc = json.loads(run("lanes", "--json").stdout)
        assert {row["cuit"]: row["depth"] for row in doc["rows"]} == {RI_CUIT: 5, MONO_CUIT: 1}
        assert json.loads(run("batch", "sub", "--json").stdout)["total"] == 6
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)


# --- views ----------------------------------------------------------------------------


def test_rich_tables_print_api_messages_verbatim() -> None:
    table = Table(["job", "messages"], [["j1", "[10016] El numero [bold]no[/bold] es"]])
    console = Console(record=True, width=120, force_terminal=True)
    console.print(table.rich())
    assert "[10016] El numero [bold]no[/bold] es" in console.export_text()
    assert table.plain().splitlines()[1].split(None, 1) == [
        "j1",
        "[10016] El numero [bold]no[/bold] es",
    ]


def test_lane_row_states() -> None:
    now = 1000.0
    assert lane_row("c", 0, {}, None, now)["status"] == "idle"
    ready = lane_row("c", 3, {"next_at": "990"}, 990.0, now)
    assert (ready["status"], ready["next_slot_in_seconds"]) == ("ready", 0.0)
    waiting = lane_row("c", 3, {"next_at": "1030"}, 1030.0, now)
    assert (waiting["status"], waiting["next_slot_in_seconds"]) == ("waiting", 30.0)
    sending = lane_row("c", 3, {"token": "7", "owner": "w", "expires": "1020"}, None, now)
    assert (sending["status"], sending["leased"], sending["lease_expires_in_seconds"]) == (
        "sending",
        True,
        20.0,
    )
    blocked = lane_row("c", 2, {"paused": "AFIP block", "paused_until": "1300"}, 1300.0, now)
    assert (blocked["status"], blocked["next_slot_in_seconds"]) == ("paused", 300.0)
    held = lane_row("c", 2, {"paused": "operator"}, None, now)
    assert held["next_slot_at"] is None


def test_small_formatters() -> None:
    assert [duration(s) for s in (None, 0.4, 59, 61, 3600 * 5 + 120, 86400 * 3)] == [
        "-",
        "0s",
        "59s",
        "1m 01s",
        "5h 02m",
        "3d 00h",
    ]
    assert redis_where("redis://u:p@host:6380/2") == "redis://host:6380/2"
