"""Images only: skopeo's inspect and copy, its transports and reference syntax (map: README.md)."""
