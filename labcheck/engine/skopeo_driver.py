"""The skopeo driver: inspect and copy carried out by the real skopeo on a host (local or over SSH).

Results are the engine's own types. Credentials go into a 0600 auth file on the host, never
onto a command line.
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any, Mapping, Protocol

from labcheck.engine.base.errors import ImageNotFoundError
from labcheck.engine.base.options import CopyOptions, Credentials, SideOptions
from labcheck.engine.copy import CopyResult
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.manifest import guess_media_type
from labcheck.engine.inspect import ImageInspection
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.errors import LabcheckError


class SkopeoError(LabcheckError):
    """skopeo exited non-zero; the message is its last line of stderr."""


class CommandResult(Protocol):
    rc: int
    stdout: str
    stderr: str


class TestinfraHost(Protocol):
    """The part of testinfra's Host the driver uses."""

    backend: Any

    def run(self, command: str, *args: str) -> CommandResult: ...


class SkopeoDriver:
    name = "skopeo"

    def __init__(self, host: TestinfraHost, *, env: Mapping[str, str] | None = None, skopeo: str = "skopeo") -> None:
        self.host = host
        self.env = dict(env or {})
        self.skopeo = skopeo

    # --- running skopeo on the host -------------------------------------------------------

    def _line(self, args: list[str]) -> str:
        exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in self.env.items())
        return exports + " ".join(shlex.quote(a) for a in [self.skopeo, *args])

    def _run(self, args: list[str]) -> CommandResult:
        result = self.host.run(self._line(args))
        if result.rc != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            message = lines[-1] if lines else f"skopeo exited with status {result.rc}"
            message = message.split('msg="', 1)[-1].rstrip('"') if 'msg="' in message else message
            error = ImageNotFoundError if "manifest unknown" in message or "no such image" in message.lower() else SkopeoError
            raise error(f"skopeo {args[0]}: {message}")
        return result

    def _tempdir(self) -> str:
        result = self.host.run("umask 077 && mktemp -d")
        if result.rc != 0:
            raise SkopeoError(f"cannot create a temporary directory on the host: {result.stderr.strip()}")
        return result.stdout.strip()

    def _write_private(self, path: str, content: str) -> None:
        """Write a file readable only by its owner, without the content touching a command line."""
        backend = self.host.backend
        if backend.NAME == "local":
            import os

            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
        elif backend.NAME == "paramiko":
            sftp = backend.client.open_sftp()
            try:
                with sftp.open(path, "w") as handle:
                    handle.chmod(0o600)
                    handle.write(content)
            finally:
                sftp.close()
        else:
            raise SkopeoError(f"the skopeo driver cannot pass credentials over a {backend.NAME} connection",
                              hint="use a local:// or paramiko:// host")

    def _side_args(self, ref: str, opts: SideOptions | None, prefix: str, tmp: list[str]) -> list[str]:
        args: list[str] = []
        # skopeo 1.9 ignores DOCKER_HOST: name the daemon explicitly.
        daemon_host = (opts.daemon_host if opts else None) or self.env.get("DOCKER_HOST")
        if daemon_host and ref.startswith("docker-daemon:"):
            args += [f"--{prefix}daemon-host", daemon_host]
        if opts is None:
            return args
        if opts.creds is not None:
            args += [f"--{prefix}authfile", self._authfile(ref, opts.creds, tmp)]
        elif opts.authfile:
            args += [f"--{prefix}authfile", opts.authfile]
        if opts.no_creds:
            args.append(f"--{prefix}no-creds")
        if opts.tls_verify is not None:
            args.append(f"--{prefix}tls-verify={'true' if opts.tls_verify else 'false'}")
        if opts.cert_dir:
            args += [f"--{prefix}cert-dir", opts.cert_dir]
        if opts.shared_blob_dir:
            args += [f"--{prefix}shared-blob-dir", opts.shared_blob_dir]
        return args

    def _authfile(self, ref: str, creds: Credentials, tmp: list[str]) -> str:
        named = parse_image_reference(ref).docker_reference
        registry = named.domain if named is not None else ""
        if not tmp:
            tmp.append(self._tempdir())
        path = f"{tmp[0]}/auth-{len(tmp)}.json"
        tmp.append(path)
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        self._write_private(path, json.dumps({"auths": {registry: {"auth": token}}}))
        return path

    def _cleanup(self, tmp: list[str]) -> None:
        if tmp:
            self.host.run(f"rm -rf {shlex.quote(tmp[0])}")

    @staticmethod
    def _global_args(opts: SideOptions | None) -> list[str]:
        args: list[str] = []
        if opts is not None:
            for flag, value in (("--override-arch", opts.override_arch), ("--override-os", opts.override_os),
                                ("--override-variant", opts.override_variant)):
                if value:
                    args += [flag, value]
        return args

    @staticmethod
    def _copy_flags(options: CopyOptions, dst_options: SideOptions | None) -> list[str]:
        """skopeo copy's flags for what CopyOptions and the destination's options ask."""
        args: list[str] = []
        if options.index_only:
            args += ["--multi-arch", "index-only"]
        if options.preserve_digests:
            args.append("--preserve-digests")
        if options.compress_format:
            args += ["--dest-compress-format", options.compress_format]
        if options.compress_level is not None:
            args += ["--dest-compress-level", str(options.compress_level)]
        dst = dst_options or SideOptions()
        for flag, on in (("--dest-compress", dst.compress), ("--dest-decompress", dst.decompress),
                         ("--dest-oci-accept-uncompressed-layers", dst.oci_accept_uncompressed_layers),
                         ("--dest-precompute-digests", dst.precompute_digests)):
            if on:
                args.append(flag)
        for tag in dst.additional_tags:
            args += ["--additional-tag", tag]
        return args

    # --- the engine API --------------------------------------------------------------------

    def inspect(self, ref: str, *, options: SideOptions | None = None, list_tags: bool = True) -> ImageInspection:
        tmp: list[str] = []
        try:
            args = [*self._global_args(options), "inspect", *self._side_args(ref, options, "", tmp)]
            if not list_tags:
                args.append("--no-tags")
            data = json.loads(self._run([*args, ref]).stdout)
        finally:
            self._cleanup(tmp)
        return ImageInspection(
            digest=data.get("Digest", ""), created=data.get("Created"), docker_version=data.get("DockerVersion", ""),
            labels=data.get("Labels"), architecture=data.get("Architecture", ""), os=data.get("Os", ""),
            layers=list(data.get("Layers") or []), env=data.get("Env"), repo_tags=list(data.get("RepoTags") or []),
            name=data.get("Name", ""), tag=data.get("Tag", ""),
        )

    def raw_manifest(self, ref: str, *, options: SideOptions | None = None) -> bytes:
        tmp: list[str] = []
        try:
            args = [*self._global_args(options), "inspect", "--raw", *self._side_args(ref, options, "", tmp), ref]
            return self._run(args).stdout.encode()
        finally:
            self._cleanup(tmp)

    def copy(self, src: str, dst: str, *, src_options: SideOptions | None = None,
             dst_options: SideOptions | None = None, options: CopyOptions | None = None) -> CopyResult:
        options = options or CopyOptions()
        tmp: list[str] = []
        try:
            digestfile = f"{self._tempdir() if not tmp else tmp[0]}/digest"
            if not tmp:
                tmp.append(digestfile.rsplit("/", 1)[0])
            policy = ["--insecure-policy"] if options.insecure_policy else (["--policy", options.policy] if options.policy else [])
            args = [*policy, *self._global_args(src_options), "copy", "--quiet", "--digestfile", digestfile,
                    *self._side_args(src, src_options, "src-", tmp), *self._side_args(dst, dst_options, "dest-", tmp)]
            if options.all_images:
                args.append("--all")
            if options.manifest_format:
                args += ["--format", options.manifest_format]
            args += self._copy_flags(options, dst_options)
            self._run([*args, src, dst])
            digest = self.host.run(f"cat {shlex.quote(digestfile)}").stdout.strip()
            manifest_args = [*self._global_args(dst_options), "inspect", "--raw",
                             *self._side_args(dst, dst_options, "", tmp), dst]
            manifest = self._run(manifest_args).stdout.encode() if not dst.startswith("docker-daemon:") else b""
            if manifest and sha256_digest(manifest) != digest:
                manifest = b""  # read back, not what was written (docker-archive makes a manifest up when read)
        finally:
            self._cleanup(tmp)
        return CopyResult(manifest_digest=digest, manifest=manifest,
                          media_type=guess_media_type(manifest) if manifest else "")
