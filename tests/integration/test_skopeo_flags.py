"""skopeo 1.9.3's copy and inspect flags on labcheck, each against the real skopeo's result.

Where skopeo's output is deterministic the trees must be equal byte for byte; where it is not
(layers compressed by Go's gzip or zstd), skopeo must read what labcheck wrote and find the same
image (config, diffIDs, media types).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.imagebuild import write_dir_image, write_dir_list

SKOPEO = shutil.which("skopeo")
pytestmark = [pytest.mark.tools, pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]


def skopeo(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def labcheck(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def fatal(proc: subprocess.CompletedProcess[bytes]) -> str:
    """skopeo's error message (what follows msg=), unquoted."""
    line = proc.stderr.decode().strip().splitlines()[-1]
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    assert match, line
    return json.loads(f'"{match.group(1)}"')


def first_line(proc: subprocess.CompletedProcess[bytes], command: str) -> str:
    line = proc.stderr.decode().splitlines()[0]
    assert line.startswith(f"labcheck {command}: ")
    return line[len(f"labcheck {command}: "):]


def image_view(ref: str, *flags: str) -> dict[str, Any]:
    """What skopeo reads at ref: its config (digest-checked while read) and its layers' media types."""
    config = json.loads(skopeo("inspect", *flags, "--config", ref).stdout)
    raw = json.loads(skopeo("inspect", *flags, "--raw", ref).stdout)
    return {"diff_ids": config["rootfs"]["diff_ids"], "config": config["config"],
            "layer_types": [layer["mediaType"] for layer in raw["layers"]], "manifest_type": raw.get("mediaType")}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_dir_image(root / "single", layers=2, labels={"name": "fedora"})
    write_dir_list(root / "multi")
    skopeo("copy", "--dest-decompress", f"dir:{root / 'single'}", f"dir:{root / 'plain'}")
    return root


# (source, destination, flags): skopeo's result is deterministic, so the trees must be equal.
SAME_TREES = [
    ("dir:{i}/single", "dir:{o}/d", ["--dest-decompress"]),
    ("dir:{i}/plain", "dir:{o}/d", ["--dest-decompress"]),
    ("dir:{i}/plain", "oci:{o}/l:t", ["--dest-oci-accept-uncompressed-layers"]),
    ("dir:{i}/single", "oci:{o}/l:t", ["--dest-oci-accept-uncompressed-layers"]),
    ("dir:{i}/single", "dir:{o}/d", ["--dest-compress"]),  # already compressed: kept
    ("dir:{i}/single", "oci:{o}/l:t", ["--preserve-digests"]),
    ("dir:{i}/single", "oci:{o}/l:t", ["--preserve-digests", "--format", "oci"]),
    ("dir:{i}/single", "dir:{o}/d", ["--dest-precompute-digests"]),
    ("dir:{i}/single", "oci:{o}/l:t", ["--dest-shared-blob-dir", "{o}/shared"]),
    ("dir:{i}/multi", "dir:{o}/d", ["--multi-arch", "system"]),
    ("dir:{i}/multi", "dir:{o}/d", ["--multi-arch", "all"]),
    ("dir:{i}/multi", "dir:{o}/d", ["--multi-arch", "index-only"]),
    ("dir:{i}/multi", "oci:{o}/l:t", ["--multi-arch", "all"]),
    ("dir:{i}/single", "docker-archive:{o}/a.tar:fedora:38", ["--additional-tag", "foo/bar:1",
                                                              "--additional-tag", "baz:2"]),
    ("dir:{i}/single", "docker-archive:{o}/a.tar", ["--additional-tag", "quay.io/x/y:z"]),
    ("dir:{i}/single", "dir:{o}/d", ["--digestfile", "{o}/digest"]),
    ("dir:{i}/single", "dir:{o}/d", ["--src-username", "u", "--src-password", "p"]),  # dir: needs none
]


@pytest.mark.parametrize("src,dst,flags", SAME_TREES, ids=[" ".join(f) for _, _, f in SAME_TREES])
def test_flag_writes_what_skopeo_writes(images: Path, tmp_path: Path, src: str, dst: str, flags: list[str]) -> None:
    outputs = {}
    for who, run in (("ours", labcheck), ("theirs", skopeo)):
        out = tmp_path / who
        out.mkdir()
        run("copy", *[f.format(o=out) for f in flags], src.format(i=images), dst.format(o=out))
        outputs[who] = tree(out)
    assert outputs["ours"] == outputs["theirs"]
    assert outputs["ours"]  # something was written


def test_shared_blob_dir_is_read_back_by_both(images: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    labcheck("copy", "--dest-shared-blob-dir", str(shared), f"dir:{images}/single", f"oci:{tmp_path}/l:t")
    assert list((tmp_path / "l" / "blobs").iterdir()) == []  # every blob, manifests too, went to the shared dir
    for run in (labcheck, skopeo):
        run("copy", "--src-shared-blob-dir", str(shared), f"oci:{tmp_path}/l:t", f"dir:{tmp_path}/{run.__name__}")
    assert tree(tmp_path / "labcheck") == tree(tmp_path / "skopeo")
    ours = labcheck("inspect", "--shared-blob-dir", str(shared), f"oci:{tmp_path}/l:t").stdout
    assert ours == skopeo("inspect", "--shared-blob-dir", str(shared), f"oci:{tmp_path}/l:t").stdout


# (source, destination, flags): layers compressed by each tool's own compressor, so only skopeo's view is compared.
SAME_IMAGE = [
    ("dir:{i}/plain", "oci:{o}/l:t", []),  # oci: compresses what is not compressed
    ("dir:{i}/plain", "dir:{o}/d", ["--dest-compress"]),
    ("dir:{i}/plain", "dir:{o}/d", ["--dest-compress", "--dest-compress-level", "1"]),
    ("dir:{i}/single", "oci:{o}/l:t", ["--dest-compress-format", "zstd"]),
    ("dir:{i}/plain", "oci:{o}/l:t", ["--dest-compress-format", "zstd", "--dest-compress-level", "19"]),
    ("dir:{i}/single", "oci:{o}/l:t", ["--dest-compress-format", "gzip"]),  # already gzip: kept
    ("dir:{i}/single", "dir:{o}/d", ["--dest-compress", "--dest-compress-format", "gzip"]),
]


@pytest.mark.parametrize("src,dst,flags", SAME_IMAGE, ids=[" ".join([*f, s[:10], d[:6]]) for s, d, f in SAME_IMAGE])
def test_skopeo_reads_the_same_image_from_what_labcheck_wrote(images: Path, tmp_path: Path, src: str, dst: str,
                                                              flags: list[str]) -> None:
    views = {}
    for who, run in (("ours", labcheck), ("theirs", skopeo)):
        out = tmp_path / who
        out.mkdir()
        destination = dst.format(o=out)
        run("copy", *flags, src.format(i=images), destination)
        views[who] = image_view(destination)
        skopeo("copy", destination, f"dir:{out}/read-back")  # every blob digest-checked by skopeo
    assert views["ours"] == views["theirs"]


def test_zstd_layers_are_read_on_every_path(images: Path, tmp_path: Path) -> None:
    skopeo("copy", "--dest-compress-format", "zstd", f"dir:{images}/single", f"oci:{tmp_path}/z:t")
    assert image_view(f"oci:{tmp_path}/z:t")["layer_types"] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
    # skopeo 1.9.3 cannot put these into a docker-archive (no zstd in docker manifests); labcheck
    # decompresses them for the tar, and skopeo reads the result as the same image
    assert "zstd" in fatal(skopeo("copy", f"oci:{tmp_path}/z:t", f"docker-archive:{tmp_path}/s.tar:z:1", check=False))
    labcheck("copy", f"oci:{tmp_path}/z:t", f"docker-archive:{tmp_path}/z.tar:z:1")
    assert image_view(f"docker-archive:{tmp_path}/z.tar")["diff_ids"] == image_view(f"oci:{tmp_path}/z:t")["diff_ids"]
    labcheck("copy", "--dest-decompress", f"oci:{tmp_path}/z:t", f"dir:{tmp_path}/plain-ours")
    skopeo("copy", "--dest-decompress", f"oci:{tmp_path}/z:t", f"dir:{tmp_path}/plain-theirs")
    assert tree(tmp_path / "plain-ours") == tree(tmp_path / "plain-theirs")
    assert labcheck("inspect", f"oci:{tmp_path}/z:t").stdout == skopeo("inspect", f"oci:{tmp_path}/z:t").stdout


def test_zstd_into_a_docker_manifest_fails_as_in_skopeo(images: Path, tmp_path: Path) -> None:
    flags = ["-q", "--dest-compress", "--dest-compress-format", "zstd", f"dir:{images}/single"]
    ours = labcheck("copy", *flags, f"dir:{tmp_path}/ours", check=False)
    theirs = skopeo("copy", *flags, f"dir:{tmp_path}/theirs", check=False)
    assert ours.returncode != 0 and theirs.returncode != 0
    digest = re.compile(r"sha256:[0-9a-f]{64}")  # the zstd blob each tool made
    assert digest.sub("D", first_line(ours, "copy")) == digest.sub("D", fatal(theirs))
    assert not (tmp_path / "ours").exists()  # nothing half-written


MISTAKES = [
    ["--src-creds", "a:b", "--src-username", "a"],
    ["--dest-username", "a"],
    ["--dest-password", "a"],
    ["--all", "--multi-arch", "system"],
    ["--multi-arch", "bogus"],
    ["--dest-compress-format", "bogus"],
    ["--additional-tag", "baz"],
]


@pytest.mark.parametrize("flags", MISTAKES, ids=[" ".join(f) for f in MISTAKES])
def test_flag_mistakes_get_skopeos_message(images: Path, tmp_path: Path, flags: list[str]) -> None:
    args = ["copy", *flags, f"dir:{images}/single", f"docker-archive:{tmp_path}/x.tar:x:1"]
    ours, theirs = labcheck(*args, check=False), skopeo(*args, check=False)
    assert ours.returncode == 2 and theirs.returncode == 1
    assert first_line(ours, "copy") == fatal(theirs)
    assert not (tmp_path / "x.tar").exists()


def test_compress_and_decompress_together_is_refused_as_in_skopeo(images: Path, tmp_path: Path) -> None:
    args = ["copy", "--dest-compress", "--dest-decompress", f"dir:{images}/single", f"dir:{tmp_path}/d"]
    ours, theirs = labcheck(*args, check=False), skopeo(*args, check=False)
    assert ours.returncode == 2
    assert first_line(ours, "copy") == fatal(theirs)


SIGNING = [["--sign-by", "ABCD"], ["--sign-by-sigstore-private-key", "/k"], ["--sign-identity", "quay.io/a/b:c"],
           ["--sign-passphrase-file", "/p"], ["--encrypt-layer", "0"], ["--encryption-key", "jwe:/k.pem"],
           ["--decryption-key", "/k.pem"]]


@pytest.mark.parametrize("flags", SIGNING, ids=[f[0] for f in SIGNING])
def test_signing_and_encryption_are_refused_naming_the_skopeo_driver(images: Path, tmp_path: Path,
                                                                     flags: list[str]) -> None:
    proc = labcheck("copy", *flags, f"dir:{images}/single", f"dir:{tmp_path}/d", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and flags[0] in lines[0] and "--driver skopeo" in lines[0]
    assert not (tmp_path / "d").exists()


TEMPLATES = ['{{.Name}}', '{{.Digest}}', '{{index .Labels "name"}}', '{{.Labels.name}}', '{{.Labels.nope}}',
             '{{range .RepoTags}}{{.}} {{end}}', '{{range $i, $t := .Layers}}{{$i}}={{$t}};{{end}}',
             '{{len .Layers}}', '{{if .Labels}}labels{{else}}none{{end}}', '{{printf "%s/%s" .Os .Architecture}}',
             '{{.Created}}', '{{.Env}}', '{{.Labels}}', '{{ .Os -}}  x  {{- .Architecture }}',
             '{{if eq .Os "linux"}}L{{else if eq .Os "x"}}X{{else}}O{{end}}',
             '{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}', '{{with .Labels}}{{.name}}{{end}}', '{{json .}}']


@pytest.mark.parametrize("template", TEMPLATES)
def test_inspect_format_prints_what_skopeo_prints(images: Path, template: str) -> None:
    ref = f"dir:{images}/single"
    assert labcheck("inspect", "--format", template, ref).stdout == skopeo("inspect", "--format", template, ref).stdout


@pytest.mark.parametrize("template", ["{{.Nope}}", "{{upper .Name}}", "{{range .Nope}}{{end}}"])
def test_inspect_format_mistakes_get_skopeos_message(images: Path, template: str) -> None:
    ref = f"dir:{images}/single"
    ours, theirs = labcheck("inspect", "--format", template, ref, check=False), skopeo(
        "inspect", "--format", template, ref, check=False)
    assert ours.returncode == 2
    assert first_line(ours, "inspect") == fatal(theirs)


def test_json_function_marshals_like_go(images: Path) -> None:
    """skopeo 1.9.3 knows only `{{json .}}`; later skopeo (containers/common) and docker have json: Go's Marshal."""
    labels = json.loads(skopeo("inspect", f"dir:{images}/single").stdout)["Labels"]
    ours = labcheck("inspect", "--format", "{{json .Labels}}", f"dir:{images}/single").stdout
    assert ours == json.dumps(labels, separators=(",", ":"), sort_keys=True).encode() + b"\n"


@pytest.mark.lab
def test_username_and_password_flags_reach_the_registry(lab_world, tmp_path: Path) -> None:
    env = {**os.environ, **lab_world.env()}
    creds = lab_world.dest_credentials()
    source = f"docker://{lab_world.source_registry}/fedora:38"
    pushed = f"docker://{lab_world.dest_registry}/flags-{tmp_path.name[-8:]}/fedora:1"
    user = ["--dest-username", creds.username, "--dest-password", creds.password]
    labcheck("copy", *user, source, pushed, env=env)
    read = ["--username", creds.username, "--password", creds.password]
    # skopeo reads what labcheck pushed with inspect's --username/--password, and so does labcheck
    theirs = skopeo("inspect", "--no-tags", *read, pushed, env=env).stdout
    assert labcheck("inspect", "--no-tags", *read, pushed, env=env).stdout == theirs
    assert json.loads(theirs)["RepoTags"] == []
    src_user = ["--src-username", creds.username, "--src-password", creds.password]
    for run in (labcheck, skopeo):
        run("copy", *src_user, pushed, f"dir:{tmp_path}/{run.__name__}", env=env)
    assert tree(tmp_path / "labcheck") == tree(tmp_path / "skopeo")
    assert creds.password.encode() not in labcheck("copy", *src_user, "--dest-compress-format", "bogus", pushed,
                                                   f"dir:{tmp_path}/x", env=env, check=False).stderr


@pytest.mark.lab
def test_inspect_no_tags_raw_and_config_on_a_registry(lab_world) -> None:
    env = {**os.environ, **lab_world.env()}
    ref = f"docker://{lab_world.source_registry}/fedora"
    for flags in (["--no-tags"], ["-n"], ["--raw"], ["--config"], ["--config", "--raw"],
                  ["--format", "{{range .RepoTags}}{{.}},{{end}}"], ["--format", '{{index .Labels "vendor"}}']):
        assert labcheck("inspect", *flags, ref, env=env).stdout == skopeo("inspect", *flags, ref, env=env).stdout, flags
