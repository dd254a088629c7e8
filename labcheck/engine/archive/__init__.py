"""Tar archives: Go-identical writing, safe extraction, compression (containers/image pkg/compression)."""
