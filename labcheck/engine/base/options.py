"""Options of one side of an engine operation (source or destination), skopeo's flags as fields.

Defaults live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Credentials:
    """A user name and password. repr() never shows the password."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> "Credentials":
        """Parse skopeo's `USERNAME[:PASSWORD]` form."""
        user, _, password = text.partition(":")
        return cls(user, password)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"


@dataclass
class SideOptions:
    """What skopeo calls the SystemContext of one side: --src-* or --dest-* flags."""

    creds: Credentials | None = None  # --creds / --src-creds / --dest-creds
    no_creds: bool = False  # --no-creds: access the registry anonymously
    authfile: str | None = None  # --authfile, else $REGISTRY_AUTH_FILE, else the auth.json search order
    tls_verify: bool | None = None  # None: verify, unless registries.conf marks the registry insecure
    cert_dir: str | None = None  # --cert-dir: *.crt CAs, *.cert/*.key client pairs
    ca_file: str | None = None  # a CA bundle trusted besides the system's; None: $SSL_CERT_FILE
    registries_conf: str | None = None  # --registries-conf
    daemon_host: str | None = None  # --src-daemon-host / --dest-daemon-host, else $DOCKER_HOST
    override_arch: str | None = None
    override_os: str | None = None
    override_variant: str | None = None
    retry_times: int = 0  # --retry-times
    retry_delay: float = 1.0  # first backoff between retries (seconds), doubled per attempt; tests shorten it
    # Seconds a registry may send nothing while labcheck waits for an answer or a body's next bytes:
    # a stalled (or dripping) transfer then fails as a temporary error, retried like a lost connection.
    # Not a skopeo flag: containers/image waits as long as the connection lives.
    stall_timeout: float = 60.0
    registry_token: str | None = None  # --registry-token (Bearer token given directly)
    shared_blob_dir: str | None = None  # --shared-blob-dir: oci: blobs live there, not in the layout
    # What a destination writes (skopeo's --dest-* flags; a source ignores them):
    compress: bool = False  # --dest-compress: dir: compresses uncompressed layers
    decompress: bool = False  # --dest-decompress: dir: stores layers uncompressed
    oci_accept_uncompressed_layers: bool = False  # oci: keeps uncompressed layers as they are
    precompute_digests: bool = False  # docker://: digest a changed layer before uploading it (always done here)
    additional_tags: tuple[str, ...] = ()  # --additional-tag: more RepoTags in a docker-archive:
    # Environment of the tools a transport runs (podman for containers-storage:), on top of this
    # process's: CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, … as skopeo would read them.
    tool_env: Mapping[str, str] | None = None


@dataclass
class CopyOptions:
    """Flags of `copy` that are about the copy itself, not one side."""

    all_images: bool = False  # --all / -a
    image_parallel_copies: int = 6  # --image-parallel-copies
    manifest_format: str | None = None  # --format oci|v2s2|v2s1
    remove_signatures: bool = False
    digestfile: str | None = None
    compress_format: str | None = None  # --dest-compress-format gzip|zstd: layers (re)compressed with it
    compress_level: int | None = None  # --dest-compress-level
    preserve_digests: bool = False  # --preserve-digests: no change that would alter a digest
    index_only: bool = False  # --multi-arch index-only: a list's manifest, not its images
    policy: str | None = None  # --policy: the trust policy; None: $HOME/.config/containers/policy.json or /etc/…
    insecure_policy: bool = False  # --insecure-policy: accept any image, read no policy
