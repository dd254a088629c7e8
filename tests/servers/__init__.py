"""Small real servers for faults the real components cannot produce (token issuer, flaky proxy)."""
