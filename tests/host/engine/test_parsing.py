"""The pure parts of the engine checks: command lines, references, versions, paths."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.host.engine.attribution import PathIdentities
from pytest_secagent.host.engine.checks.exposure import is_loopback
from pytest_secagent.host.engine.client import EngineKind, normalize_endpoint
from pytest_secagent.host.engine.containers import parse_container
from pytest_secagent.host.engine.daemon import (
    DockerdProcess,
    docker_settings,
    find_dockerd,
    parse_dockerd_argv,
    parse_podman_conf,
    same_endpoint,
)
from pytest_secagent.host.engine.images import matches_prefix, parse_reference
from pytest_secagent.host.engine.sockets import exposes_socket, socket_paths
from pytest_secagent.host.engine.versions import at_least, lifecycle_of, parse_version
from pytest_secagent.outcomes import EvidenceUnavailable


def process(pid: int, *args: str) -> DockerdProcess:
    argv = ("/usr/sbin/dockerd", *args)
    return DockerdProcess(pid, argv, parse_dockerd_argv(argv))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-H", "fd://", "--containerd=/run/containerd/containerd.sock"],
         {"hosts": ["fd://"], "containerd": "/run/containerd/containerd.sock"}),
        (["--host=unix:///a.sock", "-H", "tcp://0.0.0.0:2376", "--tlsverify", "--tlscert", "/c.pem"],
         {"hosts": ["unix:///a.sock", "tcp://0.0.0.0:2376"], "tlsverify": "true", "tlscert": "/c.pem"}),
        (["--icc=false", "--no-new-privileges", "--live-restore", "--userland-proxy=false"],
         {"icc": "false", "no-new-privileges": "true", "live-restore": "true", "userland-proxy": "false"}),
        (["--insecure-registry", "a:5000", "--insecure-registry=b:5000", "--userns-remap", "default"],
         {"insecure-registries": ["a:5000", "b:5000"], "userns-remap": "default"}),
        (["-G", "ops", "--unknown-switch", "--data-root", "/srv/docker"],
         {"group": "ops", "unknown-switch": "true", "data-root": "/srv/docker"}),
    ],
)  # fmt: skip
def test_dockerd_argv_becomes_daemon_json_keys(args: list[str], expected: dict[str, object]) -> None:
    assert parse_dockerd_argv(["/usr/sbin/dockerd", *args]) == expected


def test_flags_override_daemon_json_and_defaults_fill_the_rest() -> None:
    daemon = process(7, "--icc=false", "-H", "tcp://10.0.0.1:2375")
    config = {
        "icc": True,
        "no-new-privileges": True,
        "insecure-registries": ["r:1"],
        "userns-remap": "default",
    }

    settings = docker_settings(daemon, config, config_source="/etc/docker/daemon.json")

    assert settings.icc is False
    assert settings.no_new_privileges is True
    assert settings.userland_proxy is True  # dockerd's default
    assert settings.insecure_registries == ("r:1",)
    assert settings.userns_remap == "default"
    assert settings.hosts == ("tcp://10.0.0.1:2375",)
    assert settings.tls_verify is False
    assert settings.source == "dockerd (pid 7) command line; /etc/docker/daemon.json"


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("unix:///var/run/docker.sock", "/run/docker.sock", True),
        ("fd://", "unix:///run/docker.sock", True),
        ("unix:///tmp/a.sock", "unix:///tmp/b.sock", False),
        ("tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375/", True),
    ],
)
def test_endpoints_compare_like_the_daemon_reads_them(left: str, right: str, same: bool) -> None:
    assert same_endpoint(left, right) is same


def choose(
    processes: list[DockerdProcess],
    endpoint: str | None,
    root: str | None,
    *,
    configs: dict[int, dict[str, object]] | None = None,
    identities: PathIdentities | None = None,
    rootless: bool = False,
) -> int | None:
    found = find_dockerd(
        processes, configs or {}, endpoint=endpoint, root_dir=root, rootless=rootless, identities=identities
    )
    return found.pid if found else None


def test_the_dockerd_serving_the_endpoint_is_chosen_among_several() -> None:
    system = process(10)
    other = process(20, "--host", "unix:///tmp/other.sock", "--data-root", "/tmp/other")
    remapped = process(30, "--host", "unix:///tmp/remapped.sock", "--data-root", "/srv/docker",
                       "--userns-remap", "default")  # fmt: skip
    processes = [system, other, remapped]

    assert choose(processes, "unix:///var/run/docker.sock", None) == 10
    assert choose(processes, "/run/docker.sock", "/var/lib/docker") == 10
    assert choose(processes, "unix:///tmp/other.sock", None) == 20
    assert choose(processes, "unix:///elsewhere.sock", "/srv/docker/100000.100000") == 30
    assert choose(processes, "unix:///elsewhere.sock", "/srv/docker") == 30
    assert choose(processes, "unix:///elsewhere.sock", "/nowhere") is None
    # DATA_ROOT/UID.GID is only a remapped root with userns-remap on, and only that shape.
    assert choose(processes, None, "/srv/docker/not-remapped") is None
    assert choose([other], None, "/tmp/other/0.0") is None


def test_two_daemons_on_one_socket_are_ambiguous_unless_the_data_root_decides() -> None:
    first = process(10)
    second = process(20, "--data-root", "/srv/second")  # also on the default socket

    with pytest.raises(EvidenceUnavailable) as raised:
        choose([first, second], "unix:///var/run/docker.sock", None)
    message = str(raised.value)
    assert "2 dockerd processes could be the engine (all listen on unix:///var/run/docker.sock)" in message
    assert "pid 10 (unix:///var/run/docker.sock; data root /var/lib/docker)" in message
    assert "pid 20 (unix:///var/run/docker.sock; data root /srv/second)" in message
    assert "set engine.socket in the policy" in message
    assert choose([first, second], "unix:///var/run/docker.sock", "/srv/second") == 20
    assert choose([first, second], "unix:///var/run/docker.sock", "/var/lib/docker") == 10


def test_two_daemons_on_one_data_root_are_ambiguous() -> None:
    first = process(10, "-H", "unix:///a.sock", "--data-root", "/srv/d")
    second = process(20, "-H", "unix:///b.sock", "--data-root", "/srv/d/")

    with pytest.raises(EvidenceUnavailable, match=r"all own the engine's data root /srv/d\)"):
        choose([first, second], "unix:///c.sock", "/srv/d")


def test_the_daemon_on_the_socket_must_agree_with_what_the_engine_reports() -> None:
    daemon = process(10, "--data-root", "/srv/a")
    identities = PathIdentities({"/var/run/docker.sock": "8:1", "/srv/a": "8:2", "/srv/b": "8:3"})

    with pytest.raises(EvidenceUnavailable, match="reports a rootful daemon with data root /srv/b"):
        choose([daemon], "unix:///var/run/docker.sock", "/srv/b", identities=identities)
    with pytest.raises(EvidenceUnavailable, match="do not describe that engine"):
        choose([daemon], "unix:///var/run/docker.sock", "/srv/a", identities=identities, rootless=True)
    assert choose([daemon], "unix:///var/run/docker.sock", "/srv/a", identities=identities) == 10


def test_stat_identities_decide_over_text() -> None:
    # /srv/link.sock is a symlink to the daemon's socket; /tmp/x.sock in pid 20's own mount
    # namespace is another file than the CLI's /tmp/x.sock.
    linked = process(10, "-H", "unix:///srv/real.sock")
    contained = process(20, "-H", "unix:///tmp/x.sock")
    identities = PathIdentities(
        {
            "/srv/link.sock": "8:5",
            "/proc/10/root/srv/real.sock": "8:5",
            "/tmp/x.sock": "8:7",
            "/proc/20/root/tmp/x.sock": "9:7",
        },
        visible_roots=frozenset({10, 20}),
    )

    assert choose([linked, contained], "unix:///srv/link.sock", None, identities=identities) == 10
    assert choose([linked, contained], "unix:///tmp/x.sock", None, identities=identities) is None


def test_tcp_listeners_count_only_in_the_clis_network_namespace() -> None:
    inside = process(10, "-H", "tcp://127.0.0.1:2375")
    outside = process(20, "-H", "tcp://127.0.0.1:2375", "--data-root", "/srv/other")
    identities = PathIdentities(
        {"/proc/self/ns/net": "4:100", "/proc/10/ns/net": "4:100", "/proc/20/ns/net": "4:200"}
    )

    assert choose([inside, outside], "tcp://127.0.0.1:2375/", None, identities=identities) == 10
    with pytest.raises(EvidenceUnavailable, match="2 dockerd processes could be the engine"):
        choose([inside, outside], "tcp://127.0.0.1:2375", None)


def test_hosts_in_daemon_json_count_for_matching() -> None:
    daemon = process(5)
    found = find_dockerd(
        [daemon],
        {5: {"hosts": ["unix:///srv/d.sock"]}},
        endpoint="/srv/d.sock",
        root_dir=None,
        rootless=False,
    )
    assert found is daemon
    assert choose([daemon], "unix:///var/run/docker.sock", None, configs={5: {"hosts": ["unix:///srv/d.sock"]}}) is None


def test_a_rootless_dockerd_takes_its_defaults_from_its_environment() -> None:
    argv = ("/usr/bin/dockerd",)
    env = {"HOME": "/home/ops", "XDG_RUNTIME_DIR": "/run/user/1000"}
    rootless = DockerdProcess(40, argv, {}, uid=1000, environment=env)
    unknown = DockerdProcess(41, argv, {}, uid=1001)
    system = DockerdProcess(42, argv, {})

    assert (rootless.rootless, unknown.rootless, system.rootless) == (True, True, False)
    assert rootless.config_file == "/home/ops/.config/docker/daemon.json"
    assert rootless.default_host == "unix:///run/user/1000/docker.sock"
    assert rootless.default_data_root == "/home/ops/.local/share/docker"
    assert (unknown.config_file, unknown.default_host, unknown.default_data_root) == (None, None, None)
    assert system.config_file == "/etc/docker/daemon.json"
    processes = [rootless, unknown, system]
    assert choose(processes, "unix:///run/user/1000/docker.sock", None, rootless=True) == 40
    assert choose(processes, None, "/home/ops/.local/share/docker", rootless=True) == 40
    assert choose(processes, "unix:///var/run/docker.sock", None) == 42


def test_containers_conf_tables_and_quotes() -> None:
    text = (
        '# comment\n[containers]\nno_new_privileges = true  # hardening\nuserns = "auto"\n[engine]\nx = 1\n'
    )
    assert parse_podman_conf(text) == {
        "containers": {"no_new_privileges": "true", "userns": "auto"},
        "engine": {"x": "1"},
    }


@pytest.mark.parametrize(
    ("reference", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io/library/busybox", None, None),
        ("atlanhq/agent:2.0", "docker.io/atlanhq/agent", "2.0", None),
        ("index.docker.io/atlanhq/agent@sha256:ab", "docker.io/atlanhq/agent", None, "sha256:ab"),
        ("localhost:5000/a/b:1@sha256:cd", "localhost:5000/a/b", "1", "sha256:cd"),
        ("public.ecr.aws/atlanhq/redshift-app:2.0", "public.ecr.aws/atlanhq/redshift-app", "2.0", None),
    ],
)
def test_image_references(reference: str, repository: str, tag: str | None, digest: str | None) -> None:
    parsed = parse_reference(reference)
    assert (parsed.repository, parsed.tag, parsed.digest) == (repository, tag, digest)


def test_untagged_references_mean_latest_unless_pinned() -> None:
    assert parse_reference("atlanhq/agent").effective_tag == "latest"
    assert parse_reference("atlanhq/agent@sha256:ab").effective_tag is None
    assert not parse_reference("atlanhq/agent@sha256:ab").pinned
    assert parse_reference("atlanhq/agent@sha256:" + "0" * 64).pinned


@pytest.mark.parametrize(
    ("reference", "prefix", "allowed"),
    [
        ("atlanhq/agent:1", "docker.io/atlanhq", True),
        ("docker.io/atlanhq-evil/agent:1", "docker.io/atlanhq", False),
        ("quay.io/argoproj/argocli:v3", "quay.io/argoproj", True),
        ("registry.example/atlanhq/agent:1", "docker.io/atlanhq", False),
        ("atlanhq/agent:1", "atlanhq", True),
    ],
)
def test_registry_prefixes_match_on_path_boundaries(reference: str, prefix: str, allowed: bool) -> None:
    assert matches_prefix(parse_reference(reference), prefix) is allowed


def test_versions_and_release_lines() -> None:
    assert parse_version("20.10.24+dfsg1") == (20, 10, 24)
    assert parse_version("v4.3.1") == (4, 3, 1)
    assert parse_version("unknown") is None
    assert at_least((20, 10, 24), (20, 10))
    assert not at_least((19, 3, 15), (20, 10))
    today = dt.date(2026, 1, 1)
    line = lifecycle_of(EngineKind.DOCKER, (20, 10, 24), today)
    assert line is not None
    assert line.note.startswith("Docker Engine 20.10")
    assert lifecycle_of(EngineKind.DOCKER, (23, 0, 6), today) is not None
    assert lifecycle_of(EngineKind.DOCKER, (27, 5, 1), today) is None
    assert lifecycle_of(EngineKind.PODMAN, (5, 2, 0), today) is None
    assert lifecycle_of(EngineKind.DOCKER, (20, 10), dt.date(2023, 1, 1)) is None


@pytest.mark.parametrize(
    ("source", "exposed"),
    [
        ("/var/run/docker.sock", True),
        ("/run", True),
        ("/var/run", True),
        ("/", True),
        ("/srv/custom/engine.sock", True),
        ("/run/containerd/containerd.sock", True),
        ("/srv/data", False),
        ("", False),
    ],
)
def test_mounts_exposing_an_engine_socket(source: str, exposed: bool) -> None:
    sockets = socket_paths(["fd://", "unix:///srv/custom/engine.sock"])
    assert (exposes_socket(source, sockets) is not None) is exposed


def test_endpoints_to_socket_paths() -> None:
    assert normalize_endpoint("/run/docker.sock") == "unix:///run/docker.sock"
    assert socket_paths(["unix:///var/run/docker.sock", "fd://", "tcp://0.0.0.0:2375"]) == [
        "/var/run/docker.sock"
    ]


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("", False),
     ("0.0.0.0", False), ("::", False), ("192.0.2.7", False)],  # noqa: S104 - an address under test
)  # fmt: skip
def test_loopback_publications(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_inspect_of_an_older_engine_with_missing_sections() -> None:
    facts = parse_container({"Id": "abc", "Name": "/agent", "Config": None, "State": {}})
    assert (facts.name, facts.user, facts.privileged, facts.effective_caps) == ("agent", "", False, None)
    assert facts.health.defined is False
