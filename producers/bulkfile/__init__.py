"""Bulk job files (JSONL and CSV), read line by line with the problems of each line.

`read_jobs` streams a file and yields one `JobLine` per job: the validated envelope, or
the field paths and reasons it was refused for. A bad line never stops the others.
`validate_file` is the logic of the `validate` command: it prints every problem and a
summary, and returns the exit code.

Both formats are read as bytes, one physical line at a time, and each line is decoded
as UTF-8 on its own: a badly encoded line is refused alone ("not valid UTF-8 at byte N",
counting from 1). A UTF-8 BOM at the start of the file is accepted, blank lines are
skipped, and a line longer than `max_line_bytes` is refused with its size without being
held in memory whole.

Modules: `reader` (`read_jobs`, `validate_file`: the entry points), `jsonl` and
`csvfile` (each format, documented there), `jobs` (`JobLine` and the checks both formats
share), `lines` (bounded physical lines and their decoding).
"""
