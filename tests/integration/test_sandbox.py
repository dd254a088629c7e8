"""The lab sandbox: the page's registry names inside it, the machine's files untouched outside it, `lab shell`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from labcheck.labenv.sandbox import PAGE_DEST_PASSWORD, PAGE_DEST_USER, SYSTEM_TRUST_BUNDLES
from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab

PAGE_CREDS = f"{PAGE_DEST_USER}:{PAGE_DEST_PASSWORD}"


def labcheck(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def shell(world: LabWorld, command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return labcheck("lab", "--state-dir", str(world.state_dir), "shell", "--", "sh", "-c", command, **kwargs)


def machine_view() -> dict[str, object]:
    """What the machine's own name resolution and trust store look like from outside any sandbox."""
    view: dict[str, object] = {"/etc/hosts": hashlib.sha256(Path("/etc/hosts").read_bytes()).hexdigest()}
    for bundle in SYSTEM_TRUST_BUNDLES:
        if bundle.exists():
            view[str(bundle)] = hashlib.sha256(bundle.read_bytes()).hexdigest()
    for name in ("registry.fedoraproject.org", "quay.io"):
        result = subprocess.run(["getent", "hosts", name], capture_output=True, text=True)
        view[f"getent {name}"] = (result.returncode, result.stdout)
    return view


def test_lab_up_and_down_leave_the_machines_names_and_trust_store_as_they_were():
    before = machine_view()
    state_dir = Path(tempfile.mkdtemp(prefix="labcheck-sandbox-"))
    world = LabWorld(state_dir)
    try:
        world.up()
        assert world.sandbox.exists()
        assert machine_view() == before
        inside = shell(world, "getent hosts registry.fedoraproject.org quay.io")
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.split() == ["127.0.0.2", "registry.fedoraproject.org", "127.0.0.3", "quay.io"]
    finally:
        world.down()
        shutil.rmtree(state_dir, ignore_errors=True)
    assert not world.sandbox.exists()
    assert machine_view() == before


def test_the_page_names_serve_the_lab_world_with_certificates_the_sandbox_trusts(lab_world):
    result = shell(lab_world, "skopeo inspect docker://registry.fedoraproject.org/fedora")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["Name"] == "registry.fedoraproject.org/fedora"
    assert {"38", "39", "40", "latest"} <= set(data["RepoTags"])
    # Programs that read the system bundle itself, not SSL_CERT_FILE, trust the lab CA there too.
    result = shell(lab_world, "env -u SSL_CERT_FILE python3 -c \"import ssl, socket; "
                              "s = ssl.create_default_context().wrap_socket(socket.create_connection(('quay.io', 443)), "
                              "server_hostname='quay.io'); print(s.getpeercert()['subjectAltName'])\"")
    assert result.returncode == 0, result.stderr
    assert "quay.io" in result.stdout


def test_quay_accepts_the_pages_robot_account_and_the_lab_credentials_but_no_other(lab_world):
    lab_creds = lab_world.creds_file.read_text().strip()
    for creds, repository in ((PAGE_CREDS, "fatherlinux/fedora"), (lab_creds, "student/sandbox-copy")):
        result = shell(lab_world, f"skopeo copy docker://registry.fedoraproject.org/fedora:38 "
                                  f"docker://quay.io/{repository} --dest-creds \"$CREDS\"",
                       env={**os.environ, "CREDS": creds})
        assert result.returncode == 0, result.stderr
    wrong = shell(lab_world, "skopeo copy docker://registry.fedoraproject.org/fedora:38 "
                             "docker://quay.io/fatherlinux/fedora --dest-creds fatherlinux+fedora:wrong-token")
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr
    # The same store behind both names: what went to quay.io is in the destination registry on 127.0.0.1.
    client = lab_world.registry_client(lab_world.dest_registry, "student/sandbox-copy")
    try:
        assert client.manifest_digest("latest")
    finally:
        client.close()


def test_lab_shell_keeps_home_and_the_commands_exit_status(lab_world):
    result = shell(lab_world, 'echo "$HOME $LABCHECK_SANDBOX"; exit 7')
    assert result.returncode == 7
    assert result.stdout.split() == [os.environ["HOME"], lab_world.sandbox.name]


def test_lab_shell_without_a_lab_world_is_one_line_and_exit_2(tmp_path):
    result = labcheck("lab", "--state-dir", str(tmp_path / "none"), "shell", "--", "true")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"labcheck lab: no lab world in {tmp_path / 'none'} (run 'labcheck lab up' first)"]


def test_lab_shell_without_nsenter_names_the_package(lab_world, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "unshare", "mount"):  # everything but nsenter
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = labcheck("lab", "--state-dir", str(lab_world.state_dir), "shell", "--", "true",
                      env={**os.environ, "PATH": str(bin_dir)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nsenter (package util-linux)" in lines[0]


def test_the_sandbox_refuses_a_user_who_is_not_root_with_one_line_and_exit_2(lab_world):
    # A real change of the effective user, in a process of its own (this checkout's Python lives in
    # root's home, which nobody may read: the check runs with everything already loaded).
    program = ("import os, sys\n"
               "from labcheck.labenv.world import LabWorld\n"
               "world = LabWorld(sys.argv[1])\n"
               "os.seteuid(65534)\n"
               "try:\n"
               "    world.sandbox_command(['true'])\n"
               "except Exception as exc:\n"
               "    print(type(exc).__name__, exc.exit_code, exc)\n")
    result = subprocess.run([sys.executable, "-c", program, str(lab_world.state_dir)], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == ("SandboxError 2 the lab sandbox needs root: it creates and enters a network "
                                     "namespace (run it as root (sudo))")


def test_port_443_taken_inside_the_sandbox_is_one_line_and_exit_2(lab_world):
    daemon = lab_world.page_registries["registry.fedoraproject.org"]
    daemon.stop()
    squatter = subprocess.Popen(
        [*lab_world.sandbox.daemon_prefix(), sys.executable, "-c",
         "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.2', 443)); s.listen(); print('ready', flush=True); "
         "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout.readline().strip() == "ready"
        result = labcheck("lab", "--state-dir", str(lab_world.state_dir), "up")
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("labcheck lab: port 443 of registry.fedoraproject.org (127.0.0.2) is taken inside "
                               f"the sandbox {lab_world.sandbox.name}")
    finally:
        squatter.kill()
        squatter.wait()
        lab_world.up()  # the session's lab world as it was
    assert daemon.pid() is not None
