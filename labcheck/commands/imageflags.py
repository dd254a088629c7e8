"""skopeo's per-side image flags (--creds, --tls-verify, --src-*/--dest-* …) and their SideOptions."""

from __future__ import annotations

import argparse

from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.errors import UsageError


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, as skopeo's `--tls-verify=false` uses it."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def add_platform_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--override-arch", metavar="ARCH", help="use ARCH instead of the host's architecture")
    parser.add_argument("--override-os", metavar="OS", help="use OS instead of the host's OS")
    parser.add_argument("--override-variant", metavar="VARIANT", help="use VARIANT instead of the host's")
    parser.add_argument("--registries-conf", metavar="PATH", help="use PATH instead of registries.conf")
    parser.add_argument("--insecure-policy", action="store_true",
                        help="copy any image, whatever the trust policy says (read no policy.json)")
    parser.add_argument("--policy", metavar="PATH", help="the trust policy (default: "
                        "$HOME/.config/containers/policy.json, else /etc/containers/policy.json)")


def add_side_flags(parser: argparse.ArgumentParser, prefix: str = "", *, what: str = "the registry") -> None:
    """The flags of one side; prefix is "", "src-" or "dest-"."""
    p = f"--{prefix}"
    dest = prefix.replace("-", "_")
    parser.add_argument(f"{p}authfile", dest=f"{dest}authfile", metavar="PATH", help=f"auth file for {what}")
    parser.add_argument(f"{p}creds", dest=f"{dest}creds", metavar="USER[:PASS]", help=f"credentials for {what}")
    parser.add_argument(f"{p}no-creds", dest=f"{dest}no_creds", action="store_true", help=f"access {what} anonymously")
    parser.add_argument(f"{p}registry-token", dest=f"{dest}registry_token", metavar="TOKEN", help="a bearer token")
    parser.add_argument(
        f"{p}tls-verify", dest=f"{dest}tls_verify", type=parse_bool, nargs="?", const=True, metavar="BOOL",
        help=f"require HTTPS and verify certificates of {what}",
    )
    parser.add_argument(f"{p}cert-dir", dest=f"{dest}cert_dir", metavar="PATH", help="certificates directory")
    parser.add_argument(f"{p}daemon-host", dest=f"{dest}daemon_host", metavar="HOST", help="docker daemon address")
    parser.add_argument(f"{p}shared-blob-dir", dest=f"{dest}shared_blob_dir", metavar="DIRECTORY",
                        help="DIRECTORY to use to share blobs across OCI repositories")
    if prefix:  # inspect's --username/--password are its own (one side)
        parser.add_argument(f"{p}username", dest=f"{dest}username", help=f"user name for {what}")
        parser.add_argument(f"{p}password", dest=f"{dest}password", help=f"password for {what}")


# Flags of skopeo copy that need what labcheck's engine does not do (keys, signatures, encryption).
SKOPEO_ONLY_FLAGS = {
    "--sign-by": "FINGERPRINT", "--sign-by-sigstore-private-key": "PATH", "--sign-identity": "REFERENCE",
    "--sign-passphrase-file": "PATH", "--encrypt-layer": "INDEX", "--encryption-key": "KEY", "--decryption-key": "KEY",
}


def add_skopeo_only_flags(parser: argparse.ArgumentParser) -> None:
    """Accepted so that they are refused clearly (refuse_skopeo_only), never ignored."""
    for flag, metavar in SKOPEO_ONLY_FLAGS.items():
        parser.add_argument(flag, dest=flag[2:].replace("-", "_"), action="append", metavar=metavar,
                            help="needs the real skopeo (--driver skopeo)")


def refuse_skopeo_only(args: argparse.Namespace, command: str) -> None:
    for flag in SKOPEO_ONLY_FLAGS:
        if getattr(args, flag[2:].replace("-", "_"), None):
            raise UsageError(f"{flag} is not supported by labcheck's engine: signing and encryption need the real "
                             f"skopeo (run `skopeo {command}`, or a scenario step with --driver skopeo)")


def side_credentials(args: argparse.Namespace, prefix: str = "") -> str | None:
    """USER:PASSWORD from --PREFIXcreds or --PREFIXusername/--PREFIXpassword, checked as skopeo does."""
    dest = prefix.replace("-", "_")
    creds = getattr(args, f"{dest}creds", None)
    username = getattr(args, f"{dest}username", None)
    password = getattr(args, f"{dest}password", None)
    if creds is not None and username is not None:
        raise UsageError("creds and username cannot be specified at the same time")
    if username is not None and password is None:
        raise UsageError("password must be specified when username is specified")
    if password is not None and username is None:
        raise UsageError("username must be specified when password is specified")
    return creds if creds is not None else (f"{username}:{password}" if username is not None else None)


def side_options(args: argparse.Namespace, prefix: str = "") -> SideOptions:
    """SideOptions from the flags of one side; the unprefixed flags are the fallback for both sides."""
    dest = prefix.replace("-", "_")

    def get(name: str):  # type: ignore[no-untyped-def]
        value = getattr(args, f"{dest}{name}", None)
        if value is None and dest:
            value = getattr(args, name, None)
        return value

    creds = side_credentials(args, prefix)
    if creds is None and dest:
        creds = side_credentials(args)  # copy's unprefixed --creds, a labcheck extension for both sides
    return SideOptions(
        creds=Credentials.parse(creds) if creds else None,
        no_creds=bool(get("no_creds")),
        authfile=get("authfile"),
        tls_verify=get("tls_verify"),
        cert_dir=get("cert_dir"),
        registries_conf=getattr(args, "registries_conf", None),
        daemon_host=get("daemon_host"),
        override_arch=getattr(args, "override_arch", None),
        override_os=getattr(args, "override_os", None),
        override_variant=getattr(args, "override_variant", None),
        retry_times=getattr(args, "retry_times", 0) or 0,
        registry_token=get("registry_token"),
        shared_blob_dir=get("shared_blob_dir"),
    )
