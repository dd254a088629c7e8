"""`docker_image`: the Docker daemon on the host lists an image by repo:tag, optionally the same as podman's."""

from __future__ import annotations

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.names import bare_id, normalise, same_name
from labcheck.checks.schema import IMAGE_NAME, params
from labcheck.checks.tools import docker_is_not_docker, inspect_one
from labcheck.checks.trace import Trace

SCHEMA = params(
    {
        "name": {**IMAGE_NAME, "description": "repo:tag as docker images lists it (:latest when no tag)"},
        "same_id_as_storage": {**IMAGE_NAME, "description": "a name in podman's storage whose image ID must match"},
    },
    "name",
)


@check("docker_image", SCHEMA)
def docker_image(ctx: CheckContext, name: str, same_id_as_storage: str | None = None) -> CheckResult:
    """Docker on the host lists an image by name; optionally with the image ID podman's storage has for a name."""
    full = normalise(name)
    trace = Trace(ctx, "docker_image", f"Docker lists {full}")
    not_docker = docker_is_not_docker(trace)
    if not_docker:
        return trace.failed(not_docker, expected=full)
    image, problem, absent = inspect_one(trace, "docker", "image", full)
    # docker image inspect also finds images by ID prefix; only a tag counts here.
    if image is not None and not any(same_name(tag, full) for tag in image.get("RepoTags") or []):
        image, absent = None, True
    if image is None:
        if absent:
            return trace.failed(f"Docker has no image {full} (docker images): copy it to docker-daemon:{full}",
                                expected=full, actual="absent")
        return trace.failed(problem, expected=full)
    docker_id = bare_id(image.get("Id", ""))
    if same_id_as_storage is None:
        return trace.passed(expected=full, actual=f"{full} (ID {docker_id[:12]})")
    storage_name = normalise(same_id_as_storage)
    stored, problem, absent = inspect_one(trace, "podman", "image", storage_name)
    if stored is None:
        if absent:
            return trace.failed(f"there is no image {storage_name} in this user's container storage to compare with",
                                expected=f"the image ID of containers-storage:{storage_name}", actual="absent")
        return trace.failed(problem)
    storage_id = bare_id(stored.get("Id", ""))
    if storage_id != docker_id:
        return trace.failed(
            f"Docker's {full} is image {docker_id[:12]}, but podman's {storage_name} is {storage_id[:12]}: "
            f"copy containers-storage:{storage_name} to docker-daemon:{full} again",
            expected=f"image ID {storage_id}", actual=f"image ID {docker_id}",
        )
    return trace.passed(expected=f"image ID {storage_id}", actual=f"image ID {docker_id}")
