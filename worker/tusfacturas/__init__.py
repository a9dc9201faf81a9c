"""The TusFacturas API v2: the HTTP client, its replies, and their failure classes."""
