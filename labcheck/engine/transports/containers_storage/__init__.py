"""containers-storage: through the podman CLI."""
