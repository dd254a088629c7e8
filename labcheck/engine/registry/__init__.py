"""The Registry HTTP API v2 client: session, retries, auth, credentials, TLS trust, registries.conf."""
