"""The checks library: named checks of a lab host's state, registered in CHECKS when imported."""

from labcheck.checks import (  # noqa: F401 - imported so that each module registers its check
    command,
    container,
    dir_image,
    docker_image,
    file,
    registry_image,
    storage_image,
)
from labcheck.checks.base import CHECKS, CheckContext, CheckResult, check
from labcheck.checks.engine_queries import EngineQueries

__all__ = ["CHECKS", "CheckContext", "CheckResult", "EngineQueries", "check"]
