"""Signals and crashes, with real labcheck processes: SIGTERM and SIGHUP clean up as SIGINT does (exit
128+N); what a SIGKILLed copy left goes with the next copy; two copies into one destination at once
leave one whole image; a full disk is one line and no half-written destination."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labcheck.engine.fsio.atomicfile import TEMP_NAME
from tests.imagebuild import BuiltImage, write_dir_image

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

LABCHECK = [sys.executable, "-m", "labcheck.cli"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_NAME.match(p.name)] if root.exists() else []


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class StalledSource:
    """A dir: image whose last layer is a FIFO: a copy of it writes the other blobs, starts this one
    (its temporary file exists) and then waits for bytes that come only when the test says."""

    def __init__(self, path: Path) -> None:
        self.image = write_dir_image(path, layers=3, seed="stalled")
        self.fifo = path / self.image.layer_digests[-1].split(":")[1]
        self.data = self.fifo.read_bytes()
        self.fifo.unlink()
        os.mkfifo(self.fifo)
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()

    def feed_half(self) -> None:
        """Once the copy opens the FIFO, write half the layer and hold it open."""
        def feed() -> None:
            try:
                with open(self.fifo, "wb") as out:
                    out.write(self.data[: len(self.data) // 2])
                    out.flush()
                    self._stop.wait(120)
            except BrokenPipeError:
                pass

        self._writer = threading.Thread(target=feed, daemon=True)
        self._writer.start()

    def close(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(10)


def start_copy(source: Path, destination: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*LABCHECK, "copy", "--quiet", f"dir:{source}", destination], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def verify_dir_image(path: Path) -> str:
    """The manifest digest of the whole, digest-correct image at a dir: path (nothing else there)."""
    manifest = json.loads((path / "manifest.json").read_text())
    names = {"version", "manifest.json"}
    for blob in [manifest["config"], *manifest["layers"]]:
        hexdigest = blob["digest"].split(":")[1]
        assert hashlib.sha256((path / hexdigest).read_bytes()).hexdigest() == hexdigest
        names.add(hexdigest)
    assert {p.name for p in path.iterdir()} == names, "files of another image are mixed in"
    return "sha256:" + hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()


def verify_oci_tag(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    [entry] = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_text())
    for blob in [entry, manifest["config"], *manifest["layers"]]:
        hexdigest = blob["digest"].split(":")[1]
        assert hashlib.sha256((blobs / hexdigest).read_bytes()).hexdigest() == hexdigest
    return entry["digest"]


@pytest.mark.parametrize("transport", ["dir", "oci"])
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_during_a_copy_removes_what_it_wrote_and_exits_128_plus_n(tmp_path: Path, signum: int,
                                                                          transport: str) -> None:
    source = StalledSource(tmp_path / "src")
    destination = tmp_path / "dest"
    copy = start_copy(source.image.path, f"{transport}:{destination}")
    try:
        source.feed_half()
        wait_for(lambda: temps(destination), "the stalled layer's temporary file")
        copy.send_signal(signum)
        _, stderr = copy.communicate(timeout=60)
    finally:
        copy.kill()
        source.close()
    assert copy.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == [f"labcheck copy: interrupted ({signal.Signals(signum).name})"]
    assert not destination.exists()  # it was new: nothing of it is left, temporary files included


@pytest.mark.parametrize("transport", ["dir", "oci"])
def test_what_a_sigkilled_copy_left_goes_with_the_next_copy(tmp_path: Path, transport: str) -> None:
    source = StalledSource(tmp_path / "src")
    destination = tmp_path / "dest"
    copy = start_copy(source.image.path, f"{transport}:{destination}")
    try:
        source.feed_half()
        wait_for(lambda: temps(destination), "the stalled layer's temporary file")
        copy.kill()
        copy.wait(30)
    finally:
        source.close()
    left = temps(destination)
    assert left, "SIGKILL leaves the temporary file: nothing can remove it then"
    whole = write_dir_image(tmp_path / "whole", layers=3, seed="whole")
    again = start_copy(whole.path, f"{transport}:{destination}" + (":latest" if transport == "oci" else ""))
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert temps(destination) == [] and not any(p.exists() for p in left)
    if transport == "dir":
        assert verify_dir_image(destination) == whole.manifest_digest
    else:
        verify_oci_tag(destination, "latest")


def test_two_copies_into_one_dir_destination_at_once_leave_one_whole_image(tmp_path: Path) -> None:
    images: list[BuiltImage] = [write_dir_image(tmp_path / name, layers=4, seed=name, layer_size=1 << 20)
                                for name in ("a", "b")]
    destination = tmp_path / "dest"
    for round_ in range(3):
        order = images if round_ % 2 == 0 else images[::-1]
        copies = [start_copy(image.path, f"dir:{destination}") for image in order]
        for copy in copies:
            _, stderr = copy.communicate(timeout=120)
            assert copy.returncode == 0, stderr
        assert verify_dir_image(destination) in {image.manifest_digest for image in images}
        assert temps(destination) == []


def test_two_copies_into_one_oci_layout_at_once_keep_both_tags(tmp_path: Path) -> None:
    images = [write_dir_image(tmp_path / name, layers=4, seed=name, layer_size=1 << 20) for name in ("a", "b")]
    layout = tmp_path / "layout"
    for round_ in range(3):
        copies = [start_copy(image.path, f"oci:{layout}:{name}{round_}") for image, name in zip(images, "ab")]
        for copy in copies:
            _, stderr = copy.communicate(timeout=120)
            assert copy.returncode == 0, stderr
        for name in "ab":
            verify_oci_tag(layout, f"{name}{round_}")
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 6


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 1 MiB tmpfs: a copy of a bigger image runs out of space on it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True, capture_output=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)


@pytest.mark.parametrize("transport", ["dir", "oci"])
def test_a_full_disk_is_one_line_and_leaves_no_half_written_destination(tmp_path: Path, full_disk: Path,
                                                                        transport: str) -> None:
    image = write_dir_image(tmp_path / "big", layers=2, layer_size=700_000)  # random: gzip cannot shrink it
    copy = start_copy(image.path, f"{transport}:{full_disk / 'img'}")
    _, stderr = copy.communicate(timeout=120)
    assert copy.returncode == 1, stderr
    # As every copy error: the message alone on the first line, the hint on the next.
    line, hint = stderr.strip().splitlines()
    assert line.startswith(f"labcheck copy: no space left on the file system of {full_disk / 'img'}"), line
    assert hint == "hint: free some space or choose another destination", hint
    assert list(full_disk.iterdir()) == []


SCENARIO = """\
id: slow
title: A step that takes long
steps:
  - id: slow
    title: Sleep
    do:
      run: "touch {started}; sleep {pause}; touch {finished}"
    verify:
      - command: {{run: "touch {started}; sleep {pause}; touch {finished}"}}
  - id: later
    title: Never reached
    do:
      run: "touch {later}"
    verify:
      - command: {{run: "touch {later}"}}
"""


def _processes_with(argument: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if argument.encode() in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(("mode", "signum"), [("run", signal.SIGTERM), ("verify", signal.SIGHUP),
                                              ("check", signal.SIGINT), ("run", signal.SIGINT)],
                         ids=["run-SIGTERM", "verify-SIGHUP", "check-SIGINT", "run-SIGINT"])
def test_a_signal_during_a_run_stops_its_commands_and_exits_128_plus_n(tmp_path: Path, mode: str,
                                                                      signum: int) -> None:
    marks = {name: tmp_path / name for name in ("started", "finished", "later")}
    pause = f"{300 + os.getpid() % 1000}.{signum}"  # a sleep of this run's own, to look for afterwards
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SCENARIO.format(pause=pause, **marks))
    argv = [*LABCHECK, mode, str(scenario), "--json", str(tmp_path / "r.json")] if mode != "check" \
        else [*LABCHECK, mode, str(scenario)]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: marks["started"].exists() and _processes_with(pause), "the step's command started")
        run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 128 + signum, stdout + stderr
    assert stderr.strip().splitlines()[-1] == f"labcheck {mode}: interrupted ({signal.Signals(signum).name})"
    assert not marks["finished"].exists()
    if mode == "run":  # one step after another: none starts after the signal (verify runs them side by side)
        assert not marks["later"].exists()
    assert _processes_with(pause) == []  # the step's command was stopped with it, not left running
