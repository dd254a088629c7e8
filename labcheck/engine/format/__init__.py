"""Image formats: manifests, indexes, configs, digests, platforms, Go-exact JSON (containers/image manifest/, image/)."""
