"""The archive: every finished job, kept for years in a SQL database (SQLite or PostgreSQL).

Redis is the queue, not the record: job hashes expire. The archive is written from the
outbox, idempotently, and is what reads fall back to once Redis has let a job go.
"""
