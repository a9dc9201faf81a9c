"""Signed callbacks: signing, safe outbound HTTP, delivery and publishing."""
