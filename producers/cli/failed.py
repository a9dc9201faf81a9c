"""`tfq failed`: the jobs that need a person, rejected or unknown."""

from __future__ import annotations

from producers.cli.common import JsonOption, LimitOption, open_queue, print_report, store_errors


def failed(limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Rejected and unknown jobs with the API's messages, newest first."""
    from producers.cli.render import failed_table, jobs_count
    from worker.store.queries import failed_doc

    with store_errors(as_json):
        doc = failed_doc(open_queue().store, limit=limit)
    table = failed_table(doc) if doc["jobs"] else None
    more = f", the {doc['shown']} newest shown (--limit)" if doc["shown"] < doc["total"] else ""
    print_report(doc, as_json, table, [f"{jobs_count(doc['total'])} rejected or unknown{more}"])
