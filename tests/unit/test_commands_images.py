"""The inspect/copy commands' pure parts: flag mapping, progress lines, templates."""

import io

from labcheck.cli import build_parser
from labcheck.commands.gotemplate import render
from labcheck.commands.imageflags import side_options
from labcheck.commands.progress import LineProgress
from labcheck.engine.base.interfaces import ProgressEvent

D = "sha256:" + "a" * 64


def test_copy_flags_map_onto_side_options() -> None:
    args = build_parser().parse_args([
        "copy", "--creds", "u:p", "--dest-creds", "d:q", "--src-tls-verify=false", "--dest-cert-dir", "/c",
        "--override-arch", "arm64", "--retry-times", "3", "dir:/a", "dir:/b",
    ])
    src, dst = side_options(args, "src-"), side_options(args, "dest-")
    assert (src.creds.username, src.creds.password, src.tls_verify) == ("u", "p", False)
    assert (dst.creds.username, dst.tls_verify, dst.cert_dir) == ("d", None, "/c")
    assert src.override_arch == "arm64" and src.retry_times == 3


def test_line_progress_is_skopeos_text() -> None:
    out = io.StringIO()
    render_event = LineProgress(out)
    for event in [ProgressEvent("list-start", total=2), ProgressEvent("image", D, index=1, total=2),
                  ProgressEvent("start"), ProgressEvent("blob", D), ProgressEvent("blob-progress", D, 9, 3),
                  ProgressEvent("config", D), ProgressEvent("manifest"), ProgressEvent("done")]:
        render_event(event)
    assert out.getvalue().splitlines() == [
        "Getting image list signatures", "Copying 2 of 2 images in list", f"Copying image {D} (1/2)",
        "Getting image source signatures", f"Copying blob {D}", f"Copying config {D}",
        "Writing manifest to image destination", "Storing signatures",
    ]


def test_go_template_subset() -> None:
    data = {"Digest": D, "Labels": {"b": "2", "a": "1"}, "Created": "2023-04-05T06:07:08.5Z", "RepoTags": []}
    assert render("{{.Digest}} {{.Labels}} {{.Labels.a}} {{.Created}} {{.RepoTags}}", data) == (
        f"{D} map[a:1 b:2] 1 2023-04-05 06:07:08.5 +0000 UTC []"
    )
