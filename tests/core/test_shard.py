"""``--secagent-shard``: a deterministic split of the targets, its usage errors, and merged shards."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.cli import main as secagent_main
from pytest_secagent.targets import PolicyTarget, Target, parse_target
from pytest_secagent.targets.shard import (
    INDEX_ENV,
    Shard,
    ShardError,
    parse_shard,
    shard_of,
)

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR
SCENARIOS = Path(__file__).resolve().parents[1] / "kubernetes" / "scenarios"
POLICY = SCENARIOS / "policy.yaml"
FIX = (
    "give INDEX/COUNT with 0 <= INDEX < COUNT, such as 0/3, or env/COUNT to read the index from "
    f"${INDEX_ENV} (set in each pod of a Kubernetes Indexed Job)"
)


def _stderr(result: pytest.RunResult) -> str:
    return "\n".join(result.errlines).strip()


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("0/1", {}, Shard(0, 1)),
        ("2/3", {}, Shard(2, 3)),
        (" 1 / 3 ", {}, Shard(1, 3)),
        ("env/3", {INDEX_ENV: "2"}, Shard(2, 3)),
        ("env/4", {INDEX_ENV: "0"}, Shard(0, 4)),
    ],
)
def test_parse_shard(value: str, environ: dict[str, str], expected: Shard) -> None:
    assert parse_shard(value, environ) == expected


@pytest.mark.parametrize(
    ("value", "environ", "error"),
    [
        ("3/3", {}, "'3/3': index 3 is not below the count 3 (indexes start at 0)"),
        ("1/0", {}, "'1/0' has no shard: COUNT must be at least 1"),
        ("1", {}, "'1' is not INDEX/COUNT"),
        ("-1/3", {}, "'-1/3' is not INDEX/COUNT"),
        ("a/3", {}, "'a/3' is not INDEX/COUNT"),
        ("env/3", {}, f"'env/3' reads ${INDEX_ENV}, which is not set"),
        ("env/3", {INDEX_ENV: "x"}, f"'env/3' reads ${INDEX_ENV}, which is 'x', not an index"),
        ("env/3", {INDEX_ENV: "5"}, "'env/3': index 5 is not below the count 3 (indexes start at 0)"),
    ],
)
def test_parse_shard_refuses(value: str, environ: dict[str, str], error: str) -> None:
    with pytest.raises(ShardError) as caught:
        parse_shard(value, environ)
    assert str(caught.value) == error


# -- the split ---------------------------------------------------------------------------------

URIS = [f"ssh://audit@agent-{n:03d}.example.com" for n in range(60)] + [
    "k8s://prod/atlan-agent",
    "manifests://rendered/",
    "tls://acme-temporal.atlan.com:443",
]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_target_is_in_exactly_one_shard_whatever_the_order(count: int) -> None:
    targets = [parse_target(uri) for uri in URIS]
    split = {index: Shard(index, count).select(targets) for index in range(count)}
    assert sorted(t.uri for part in split.values() for t in part) == sorted(URIS)
    shuffled = list(reversed(targets))
    random.Random(count).shuffle(shuffled)  # noqa: S311 - a reproducible order, not a secret
    again = {index: {t.uri for t in Shard(index, count).select(shuffled)} for index in range(count)}
    assert again == {index: {t.uri for t in part} for index, part in split.items()}
    # Other targets never move one: the shard depends on the URI alone.
    assert all(shard_of(t.uri, count) == index for index, part in split.items() for t in part)


def test_the_split_spreads_the_targets() -> None:
    sizes = [len(Shard(index, 3).select(parse_target(uri) for uri in URIS)) for index in range(3)]
    assert min(sizes) >= len(URIS) // 6, sizes


def test_the_policy_target_is_in_shard_zero_only() -> None:
    policy = PolicyTarget(source="secagent.yaml")
    assert [Shard(index, 3).owns(policy) for index in range(3)] == [True, False, False]


# -- options and usage errors -----------------------------------------------------------------


def test_help_lists_the_shard_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--secagent-shard=INDEX/COUNT*", "*secagent_shard (string):*"])


@pytest.mark.parametrize(
    ("value", "environ", "error"),
    [
        ("3/3", None, "'3/3': index 3 is not below the count 3 (indexes start at 0)"),
        ("x", None, "'x' is not INDEX/COUNT"),
        ("env/2", None, f"'env/2' reads ${INDEX_ENV}, which is not set"),
        ("env/2", "two", f"'env/2' reads ${INDEX_ENV}, which is 'two', not an index"),
    ],
)
def test_a_bad_shard_is_a_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    environ: str | None,
    error: str,
) -> None:
    monkeypatch.delenv(INDEX_ENV, raising=False)
    if environ is not None:
        monkeypatch.setenv(INDEX_ENV, environ)
    result = pytester.runpytest("--secagent-target", "local://", "--secagent-shard", value)
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == f"ERROR: --secagent-shard: {error}; {FIX}"


def test_a_bad_shard_in_the_ini_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsecagent_shard = 1/1\n")
    result = pytester.runpytest("--secagent-target", "local://")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: secagent_shard (ini): '1/1': index 1 is not below the count 1 (indexes start at 0); {FIX}"
    )


# -- 1 shard and 3 shards merged give the same results ---------------------------------------


def _folders(tmp_path: Path, count: int) -> list[Path]:
    """Copies of two scenarios under distinct names (a mix of passing and failing controls)."""
    folders = []
    for n in range(count):
        source = SCENARIOS / ("hardened" if n % 2 else "default-helm")
        dest = tmp_path / "targets" / f"{source.name}-{n}"
        shutil.copytree(source, dest)
        (dest / "apiserver.cfg").unlink(missing_ok=True)
        folders.append(dest)
    return folders


def _run(pytester: pytest.Pytester, uris: list[str], out: Path, *extra: str) -> dict[str, Any]:
    arguments = ["-p", "no:cacheprovider", "-p", "no:randomly", "--secagent-policy", str(POLICY)]
    for uri in uris:
        arguments += ["--secagent-target", uri]
    pytester.runpytest(*arguments, *extra, "--secagent-json", str(out))
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return document


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("timing", "duration_s")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_three_shards_merged_equal_one_run(
    pytester: pytest.Pytester, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uris = [f"manifests://{folder}" for folder in _folders(tmp_path, 6)]
    targets: list[Target] = [parse_target(uri) for uri in uris]
    assert len({shard_of(t.uri, 3) for t in targets}) > 1, "the test targets all fall in one shard"
    single = _run(pytester, uris, tmp_path / "single.json")
    shards = [
        _run(pytester, list(reversed(uris)) if index == 1 else uris, tmp_path / f"shard-{index}.json",
             "--secagent-shard", f"{index}/3")
        for index in range(3)
    ]
    # Every shard checks its own targets; only the "no target of this kind" items repeat.
    checked = [(r["control_id"], r["target"]) for s in shards for r in s["results"] if r["target"]]
    assert sorted(checked) == sorted((r["control_id"], r["target"]) for r in single["results"] if r["target"])
    merged_path = tmp_path / "merged.json"
    status = secagent_main(
        ["report", *(str(tmp_path / f"shard-{index}.json") for index in range(3)), "--json", str(merged_path)]
    )
    capsys.readouterr()
    assert status == 0
    merged = json.loads(merged_path.read_text(encoding="utf-8"))
    assert _without_timings(merged["results"]) == _without_timings(single["results"])
    assert sorted(t["uri"] for t in merged["run"]["targets"]) == sorted(
        t["uri"] for t in single["run"]["targets"]
    )
    for key in single:
        if key not in ("results", "run"):
            assert _without_timings(merged[key]) == _without_timings(single[key]), key
