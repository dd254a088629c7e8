"""Targets from URIs, class inventories, Ansible inventories and ssh-config."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from labcheck.errors import UsageError
from labcheck.hosts.ansible_inventory import load_ansible_inventory
from labcheck.hosts.inventory import InventoryError, load_inventory
from labcheck.hosts.sshconfig import load_ssh_config, parse_jump, resolve
from labcheck.hosts.targets import parse_hosts_option, parse_uri


def test_uris() -> None:
    local = parse_uri("local://")
    assert local.is_local and local.name == "local"
    assert parse_uri("local://alice").name == "alice" and parse_uri("local://alice").is_local
    target = parse_uri("paramiko://alice@127.0.0.5:2222?ssh_identity_file=/keys/alice")
    assert (target.hostname, target.port, target.user, target.identity_file) == ("127.0.0.5", 2222, "alice", "/keys/alice")
    assert target.name == "alice@127.0.0.5:2222"
    bare = parse_uri("ssh://vm7")
    assert (bare.hostname, bare.port, bare.user) == ("vm7", None, None)
    assert parse_uri("bob@10.0.0.1").user == "bob"
    assert [t.name for t in parse_hosts_option("local://, ssh://a,ssh://b")] == ["local", "a", "b"]


@pytest.mark.parametrize("uri, message", [
    ("docker://box", "unsupported host URI"),
    ("ssh://host:notaport", "port is not a number"),
    ("ssh://host?password=x", "unknown parameter password"),
])
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_uri(uri)


def test_the_same_host_twice_is_an_error() -> None:
    with pytest.raises(UsageError, match="listed twice"):
        parse_hosts_option("ssh://a,ssh://a")


def test_inventory_defaults_vars_groups_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "class.yaml"
    path.write_text(
        "defaults:\n  user: student\n  port: 2222\n  identity_file: keys/class\n"
        "  vars: {image: fedora}\n  env: {XDG_RUNTIME_DIR: /run/user/1000}\n"
        "students:\n"
        "  - {name: alice, host: 10.0.0.11, vars: {dest: 'reg/alice'}, groups: [monday]}\n"
        "  - {name: bob, host: 10.0.0.12, user: bob, port: 22, agent: true, identity_file: /abs/bob}\n"
        "  - {name: carol, host: local}\n"
        "groups:\n  tuesday: [bob, carol]\n"
    )
    inventory = load_inventory(path)
    alice, bob, carol = inventory.targets
    assert (alice.user, alice.port, alice.identity_file) == ("student", 2222, str(tmp_path / "keys/class"))
    assert alice.vars == {"image": "fedora", "dest": "reg/alice"} and alice.env == {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert (bob.user, bob.port, bob.identity_file) == ("bob", 22, "/abs/bob")
    assert carol.is_local
    assert alice.groups == ("monday",) and bob.groups == ("tuesday",)
    assert [t.name for t in inventory.select("tuesday")] == ["bob", "carol"]
    assert [t.name for t in inventory.select("monday,carol")] == ["alice", "carol"]
    with pytest.raises(UsageError, match="no such group or host"):
        inventory.select("friday")


@pytest.mark.parametrize("text, message", [
    ("students:\n  - {name: a, host: h, prot: 22}\n", r"class.yaml:2: unknown key 'prot'"),
    ("students:\n  - {name: a}\n", "needs a name and a host"),
    ("students:\n  - {name: a, host: h, port: 99999}\n", "not a TCP port"),
    ("students:\n  - {name: a, host: h}\ngroups:\n  g: [zed]\n", "names 'zed', who is not a student"),
    ("studnets: []\n", "a list under 'students'"),
    ("students:\n  - {name: a, host: h}\n  - {name: a, host: h2}\n", "listed twice"),
])
def test_inventory_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "class.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError, match=message):
        load_inventory(path)


def test_ansible_ini_inventory(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(
        "[students]\n"
        "alice ansible_host=10.0.0.11 ansible_user=alice labcheck_var_dest=reg/alice\n"
        "bob ansible_host=10.0.0.12 ansible_port=2222\n"
        "[students:vars]\nansible_user=student\nansible_ssh_private_key_file=keys/class\n"
        "[teachers]\nme ansible_connection=local\n"
        "[everyone:children]\nstudents\nteachers\n"
    )
    inventory = load_ansible_inventory(path)
    targets = {t.name: t for t in inventory.targets}
    assert targets["alice"].user == "alice" and targets["alice"].vars == {"dest": "reg/alice"}
    assert (targets["bob"].user, targets["bob"].port) == ("student", 2222)
    assert targets["bob"].identity_file == str(tmp_path / "keys/class")
    assert targets["me"].is_local
    assert set(inventory.groups["everyone"]) == {"alice", "bob", "me"}


def test_ansible_yaml_inventory(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "all:\n  vars: {ansible_user: student}\n  children:\n    lab:\n"
        "      hosts:\n        vm1: {ansible_host: 127.0.0.21, labcheck_env_XDG_RUNTIME_DIR: /run/user/1001}\n"
        "        vm2: {ansible_host: 127.0.0.22, ansible_user: root}\n"
    )
    inventory = load_ansible_inventory(path)
    vm1, vm2 = inventory.targets
    assert (vm1.hostname, vm1.user, vm1.env) == ("127.0.0.21", "student", {"XDG_RUNTIME_DIR": "/run/user/1001"})
    assert vm2.user == "root"
    assert inventory.select("lab") == [vm1, vm2]


def test_ssh_config_aliases_and_jumps(tmp_path: Path) -> None:
    config = paramiko.SSHConfig.from_text(
        "Host vm-*\n  User student\n  Port 2200\n  IdentityFile ~/.ssh/class\n  ProxyJump bastion\n"
        "Host vm-1\n  HostName 10.0.0.11\n"
        "Host bastion\n  HostName 192.0.2.1\n  User jump\n  ProxyJump none\n"
    )
    target = resolve(parse_uri("ssh://vm-1"), config)
    assert (target.hostname, target.user, target.port, target.proxy_jump) == ("10.0.0.11", "student", 2200, "bastion")
    assert target.identity_file.endswith("/.ssh/class")
    explicit = resolve(parse_uri("ssh://root@vm-1:22"), config)
    assert (explicit.user, explicit.port) == ("root", 22)  # the URI wins, as ssh's command line does
    assert resolve(parse_jump("bastion"), config).proxy_jump is None
    jump = parse_jump("ops@gw.example:2022,inner")
    assert (jump.user, jump.hostname, jump.port, jump.proxy_jump) == ("ops", "gw.example", 2022, "inner")


def test_a_host_is_tried_once_per_run_even_when_connected_early() -> None:
    """A server that accepts and hangs up at once (no SSH banner): connecting early, then asking for
    the host twice, reaches it exactly once, and each ask gets the same reason."""
    import socket
    import threading

    from labcheck.hosts.errors import HostUnreachable
    from labcheck.hosts.pool import ConnectionPool, PoolOptions

    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    target = parse_uri(f"ssh://student@127.0.0.1:{server.getsockname()[1]}")
    pool = ConnectionPool(PoolOptions(connect_timeout=5))
    try:
        pool.connect_early([target, parse_uri("local://")])
        reasons = []
        for _ in range(2):
            with pytest.raises(HostUnreachable) as caught:
                pool.host(target)
            reasons.append(caught.value.reason)
        assert accepted == [1] and pool.opened == 0
        assert reasons[0] == reasons[1] and f"127.0.0.1:{server.getsockname()[1]}" in reasons[0]
    finally:
        server.close()
        pool.close_all()


def test_ssh_config_includes_are_followed_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh" / "conf.d").mkdir(parents=True)
    (tmp_path / ".ssh" / "conf.d" / "10-class.conf").write_text("Host vm-1\n  HostName 10.0.0.11\n")
    (tmp_path / ".ssh" / "conf.d" / "20-more.conf").write_text("Host vm-2\n  HostName 10.0.0.12\n"
                                                               "Include ~/deeper.conf\n")
    (tmp_path / "deeper.conf").write_text("Host vm-3\n  HostName 10.0.0.13\n")
    (tmp_path / "in-block.conf").write_text("HostName 10.0.0.20\n")
    main = tmp_path / "config"
    main.write_text("Host before\n  User early\n"
                    "Include conf.d/*.conf missing-is-skipped.conf\n"  # relative: under ~/.ssh, as ssh does
                    "Host after\n  Port 2200\n"
                    "Host bastion\n  Include=\"~/in-block.conf\"\n  User jump\n")
    config = load_ssh_config(str(main))
    assert config.lookup("vm-1")["hostname"] == "10.0.0.11"
    assert config.lookup("vm-2")["hostname"] == "10.0.0.12"
    assert config.lookup("vm-3")["hostname"] == "10.0.0.13"
    assert config.lookup("before")["user"] == "early" and config.lookup("after")["port"] == "2200"
    # An Include inside a block applies to that block only, and the block goes on after it.
    assert (config.lookup("bastion")["hostname"], config.lookup("bastion")["user"]) == ("10.0.0.20", "jump")
    assert config.lookup("vm-1").get("user") is None


def test_an_include_cycle_is_a_usage_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.conf"
    loop.write_text(f"Host x\n  Include {loop}\n")
    with pytest.raises(UsageError, match="Include nested more than 16 deep"):
        load_ssh_config(str(loop))
