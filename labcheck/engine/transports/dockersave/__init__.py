"""docker save's format and the transports that speak it: docker-archive: and docker-daemon:."""
