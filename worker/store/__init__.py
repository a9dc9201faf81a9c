"""All Redis state: keys, scripts, lanes, jobs, callbacks, outbox, queries."""
