"""The lab world for a non-root user: root's paths left out, what must be reachable found."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from labcheck.labenv import userenv


def test_the_rootless_conf_keeps_what_works_here_and_drops_roots_paths(tmp_path: Path) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\nnetns = "host"\n\n[engine]\nruntime = "crun"\ncgroup_manager = "systemd"\n'
                    f'events_logger = "file"\nevents_logfile_path = "{tmp_path}/events.log"\n'
                    f'tmp_dir = "{tmp_path}/tmp"\n\n[network]\nnetwork_config_dir = "{tmp_path}/networks"\n')
    rootless = userenv.write_rootless_conf(conf)
    text = rootless.read_text()
    assert rootless.name == userenv.ROOTLESS_CONF and rootless.stat().st_mode & 0o777 == 0o644
    assert str(tmp_path) not in text and "[network]" not in text
    assert 'runtime = "crun"' in text and 'cgroup_manager = "systemd"' in text and 'netns = "host"' in text


def test_a_directory_closed_to_others_is_named() -> None:
    root = Path(tempfile.mkdtemp(prefix="labcheck-userenv-"))  # not under pytest's own 0700 directory
    try:
        root.chmod(0o755)
        closed = root / "home"
        (closed / "lab").mkdir(parents=True)
        (closed / "lab" / "ca.crt").write_text("x")
        closed.chmod(0o700)
        assert userenv.unreachable_by_others([closed / "lab" / "ca.crt"]) == closed
        closed.chmod(0o711)
        assert userenv.unreachable_by_others([closed / "lab" / "ca.crt"]) is None
    finally:
        shutil.rmtree(root)
