"""Configs decoded and re-encoded as skopeo's Go structs do."""

import json

from labcheck.engine.format.imageconfig import go_time, oci_config, to_oci_config


def test_go_time_round_trip() -> None:
    assert go_time("2023-04-05T06:07:08.120000000Z") == "2023-04-05T06:07:08.12Z"
    assert go_time("2023-04-05T06:07:08+00:00") == "2023-04-05T06:07:08Z"
    assert go_time("2023-04-05T08:07:08.500+02:00") == "2023-04-05T08:07:08.5+02:00"


def test_docker_fields_dropped_keys_matched_case_insensitively() -> None:
    blob = json.dumps({
        "OS": "linux", "Architecture": "amd64", "docker_version": "20.10",
        "container_config": {"Cmd": ["x"]},
        "config": {"Hostname": "h", "Env": [], "Cmd": None, "Labels": {"b": "1", "a": "<&>"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }).encode()
    assert oci_config(blob) == {
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"a": "<&>", "b": "1"}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    assert to_oci_config(blob) == (
        b'{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"\\u003c\\u0026\\u003e","b":"1"}},'
        b'"rootfs":{"type":"layers","diff_ids":[]}}'
    )
