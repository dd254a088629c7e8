"""Image names and skopeo's transport:reference syntax (containers/image docker/reference, alltransports)."""
