"""The offline lab world: registries, dockerd and podman configuration started by labcheck itself."""
