"""Signed callback webhooks: signing, safe outbound HTTP, publishing the outbox, delivery."""
