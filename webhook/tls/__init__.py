"""Certificate generation for the webhook's TLS (a small CA and the serving certs it signs)."""
