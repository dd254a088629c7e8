"""Root conftest: labcheck's own plugin is loaded through its pytest11 entry point."""
