"""`labcheck lab up|down|status|env|shell`: the offline lab world and its sandbox."""

from __future__ import annotations

import argparse
import shutil
import sys


def register(subparsers) -> None:
    lab = subparsers.add_parser(
        "lab",
        help="the offline lab world: registries, dockerd and podman config on this machine",
        description="Bring up, inspect and stop the offline lab world: a source registry (standing in "
        "for registry.fedoraproject.org, anonymous pull, seeded with a fedora image), a destination "
        "registry (standing in for quay.io, htpasswd auth), dockerd, and podman/skopeo configuration. "
        "Everything lives under one state directory.",
    )
    state_dir = dict(metavar="DIR", help="where the lab world keeps its state (default: $LABCHECK_STATE_DIR, "
                     "else $XDG_STATE_HOME/labcheck/lab); before or after the action")
    lab.add_argument("--state-dir", **state_dir)
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True,
                                 parser_class=subparsers._parser_class)
    up = actions.add_parser("up", help="start the lab world (idempotent) and wait until it answers")
    up.add_argument("--source-port", type=int, metavar="PORT", help="port of the source registry (default: a free one)")
    up.add_argument("--dest-port", type=int, metavar="PORT", help="port of the destination registry (default: a free one)")
    up.set_defaults(func=_up)
    down = actions.add_parser("down", help="stop everything the lab world started")
    down.add_argument("--purge", action="store_true", help="also delete the state directory (images, CA, credentials)")
    down.set_defaults(func=_down)
    actions.add_parser("status", help="show each component with its address and health").set_defaults(func=_status)
    actions.add_parser(
        "env", help="print shell exports: eval \"$(labcheck lab env)\"",
        description="Print shell exports that point skopeo, podman, docker and labcheck at the lab world. "
        "LABCHECK_DEST_CREDS_FILE names the 0600 file holding the destination registry's user:password; "
        "the password itself is never printed.",
    ).set_defaults(func=_env)
    shell = actions.add_parser(
        "shell", help="a shell, or one command, in the lab sandbox where the course page's names work",
        usage="labcheck lab shell [-h] [-- COMMAND [ARG ...]]",
        description="Run an interactive shell, or one command (after --), inside the lab sandbox: a network "
        "namespace where registry.fedoraproject.org and quay.io are the lab world's registries (port 443, "
        "certificates from the lab CA, which is trusted there), /var/run/docker.sock is the lab's dockerd, "
        "and skopeo, podman and docker use the lab world's configuration. $HOME and the rest of the "
        "environment are the caller's. The machine's own /etc/hosts, resolver and trust store are untouched. "
        "Needs root. The exit status is the command's.",
        epilog="example: labcheck lab shell -- skopeo inspect docker://registry.fedoraproject.org/fedora",
    )
    shell.add_argument("shell_command", nargs=argparse.REMAINDER, metavar="COMMAND", help=argparse.SUPPRESS)
    shell.set_defaults(func=_shell)
    for action in actions.choices.values():  # `labcheck lab env --state-dir DIR`, as `lab up` prints it
        action.add_argument("--state-dir", default=argparse.SUPPRESS, **state_dir)


def _world(args: argparse.Namespace):
    from labcheck.labenv.world import LabWorld  # imported on use: keeps other commands' start-up light

    return LabWorld(args.state_dir)


def _say(message: str) -> None:
    print(f"labcheck lab: {message}", file=sys.stderr)


def _up(args: argparse.Namespace) -> int:
    from labcheck.labenv.userenv import share_with_students

    world = _world(args)
    world.up(source_port=args.source_port, dest_port=args.dest_port, progress=_say)
    for note in share_with_students(world):
        _say(note)
    _say(f"the lab world is up in {world.state_dir}; run: eval \"$(labcheck lab env"
         f"{'' if args.state_dir is None else ' --state-dir ' + str(world.state_dir)})\"")
    return 0


def _down(args: argparse.Namespace) -> int:
    world = _world(args)
    stopped = world.down(progress=_say)
    if args.purge and world.state_dir.exists():
        shutil.rmtree(world.state_dir, ignore_errors=True)
        _say(f"removed {world.state_dir}")
    if not stopped:
        _say("nothing was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = _world(args).status()
    width = max(len(row.name) for row in rows)
    for row in rows:
        mark = "up  " if row.healthy else "DOWN"
        print(f"{row.name:<{width}}  {mark}  {row.address}  ({row.detail})")
    return 0 if all(row.healthy for row in rows) else 1


def _env(args: argparse.Namespace) -> int:
    import os
    import shlex

    from labcheck.labenv.userenv import for_user, own_runtime_dir

    world = _world(args)
    env = world.env()
    if os.getuid() != 0:  # a student on the lab world's machine: their own podman store, root's never
        env = for_user(env, uid=str(os.getuid()), runtime_dir=own_runtime_dir(),
                       session_runtime_dir=os.environ.get("XDG_RUNTIME_DIR", ""))
    sys.stdout.write("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items()))
    return 0


def _shell(args: argparse.Namespace) -> int:
    import os

    command = list(args.shell_command)
    if command and command[0] == "--":
        command = command[1:]
    world = _world(args)
    if not command:
        command = _interactive_shell(world.sandbox.dir)
        _say("a shell in the lab sandbox: registry.fedoraproject.org and quay.io are the lab world's; "
             "'exit' leaves it")
    argv, env = world.sandbox_command(command)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # the command's exit status and signals are the caller's to see


def _interactive_shell(sandbox_dir) -> list[str]:
    """The user's shell, interactive; bash gets a prompt that says where it is."""
    import os

    shell = os.environ.get("SHELL") or "/bin/bash"
    if os.path.basename(shell) != "bash":
        return [shell, "-i"]
    rcfile = sandbox_dir / "bashrc"
    rcfile.write_text('[ -f ~/.bashrc ] && . ~/.bashrc\nPS1="(lab sandbox) ${PS1:-\\$ }"\n')
    return [shell, "--rcfile", str(rcfile), "-i"]
