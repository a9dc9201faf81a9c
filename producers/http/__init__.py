"""The HTTP intake: invoice jobs from backends in any language (FastAPI + uvicorn).

    tfq serve --host 0.0.0.0 --port 8080      # producers.http.serve.serve(host, port, settings)

- `POST /v1/invoices`: one envelope; 201 with the new job, 200 with the existing job of a
  repeated (cuit, external_reference). An `Idempotency-Key` header is the same key: it
  must equal the envelope's external_reference, or fills it in when the envelope has none.
- `POST /v1/batches`: `{"batch": NAME, "jobs": [envelope, ...]}`; the reply says, per
  index, accepted (job_id), duplicate (job_id) or refused (field paths and reasons).
- `GET /v1/invoices/{job_id}`, `GET /v1/batches/{name}`: a job's result, a batch's counts,
  progress and ETA.
- `GET /healthz` (Redis PING), `GET /metrics` (Prometheus), `GET /openapi.json`: no auth.

Every `/v1` request carries `Authorization: Bearer <token>`; the tenants file lists the
callers as `[[client]]` tables with the token's SHA-256 (never the token) and the CUITs
each may invoice for and read. Every error is `application/problem+json` (RFC 9457) with
the field path of each refusal in `errors`; no body ever holds a stack trace, and no log
line a body or a token.

Modules, outermost first: `serve` (uvicorn), `app` (the app factory and its OpenAPI
document), `middleware` (request id, auth, body limit, logs, metrics), `routes` (the
handlers), `schemas` (documentation models), `auth` (callers, tokens, CUIT scope),
`problems` (RFC 9457 bodies and error handlers), `context` (what the layers share).
`python -m producers.http new-token NAME CUIT...` prints a fresh token and its [[client]].
"""
