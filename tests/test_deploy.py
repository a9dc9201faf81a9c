"""The deployment files: docker-compose.yml, the Dockerfile, Prometheus' config and alerts.

No Docker engine is needed. The files are read as data and held against the code they
run: every command is a real `tfq` subcommand with options it accepts (read from the CLI
at run time, so a command still missing fails here by name), every TFQ_* variable is a
Settings field with a valid value, every scrape target is a service that listens there,
and every metric an alert uses is one tfq exports. `docker compose config` and promtool
run too when they are installed.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import redis
import typer.main
import yaml
from prometheus_client import REGISTRY
from pydantic import ValidationError

from ops.sandbox.config import build_parser
from ops.testkit.harness import unique_prefix
from producers.cli import app
from worker.metrics import queue_registry
from worker.settings import PRODUCTION_API_URL, Settings
from worker.store.keys import Keys
from worker.store.lanes import LaneStore

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_DIR = ROOT / "ops" / "deploy" / "prometheus"
RUNBOOKS_DIR = ROOT / "ops" / "deploy" / "runbooks"
PROFILES = ("prod", "demo")
SANDBOX_API_PATH = "/app/api/v2/"  # the API base path the sandbox serves (ops/sandbox/app.py)

# --- reading the compose file -----------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))  # resolves << merges
    assert isinstance(doc, dict)
    assert isinstance(doc.get("services"), dict)
    return doc


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def active(compose: dict[str, Any], profile: str) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile PROFILE up` starts."""
    return {
        name: svc
        for name, svc in services(compose).items()
        if not svc.get("profiles") or profile in svc["profiles"]
    }


def ours(svc: dict[str, Any]) -> bool:
    """A service that runs our image (built from this repository)."""
    return "build" in svc


def command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command")
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(word) for word in cmd or []]


def role(svc: dict[str, Any]) -> str | None:
    """The tfq subcommand a service of ours runs."""
    cmd = command(svc)
    return cmd[0] if ours(svc) and cmd else None


def option_value(cmd: list[str], option: str) -> str | None:
    for i, word in enumerate(cmd):
        if word == option and i + 1 < len(cmd):
            return cmd[i + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolated(value: str) -> str:
    """A compose value as it is with nothing set in the host's environment or .env."""

    def default(match: re.Match[str]) -> str:
        if match.group("default") is None:
            pytest.fail(f"{value!r}: ${{{match.group('name')}}} has no default")
        return match.group("default")

    return _INTERPOLATION.sub(default, value)


def hostnames(name: str, svc: dict[str, Any]) -> set[str]:
    """The DNS names a service answers to on the compose network."""
    names = {name}
    networks = svc.get("networks") or {}
    if isinstance(networks, dict):
        for net in networks.values():
            names.update((net or {}).get("aliases") or [])
    return names


def listen_ports(svc: dict[str, Any]) -> set[int]:
    """Container ports a service listens on, from its command, settings and ports."""
    ports: set[int] = set()
    cmd = command(svc)
    port = option_value(cmd, "--port")
    if port is not None:
        ports.add(int(port))
    if role(svc) == "worker":
        metrics = environment(svc).get("TFQ_METRICS_PORT")
        field = Settings.model_fields["metrics_port"]
        ports.add(int(interpolated(metrics)) if metrics else int(field.default))
    for spec in svc.get("ports") or []:
        target = spec.get("target") if isinstance(spec, dict) else str(spec).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    ports.update(int(str(p).split("/")[0]) for p in svc.get("expose") or [])
    return ports


# --- the CLI ----------------------------------------------------------------------------


def tfq_command(args: list[str], where: str) -> None:
    """Check `tfq ARGS` as the CLI would parse it (options, types, callbacks), without
    running it. Typer's click objects are duck-typed: recent Typer vendors its own click."""
    cmd: Any = typer.main.get_command(app)
    path = ["tfq"]
    rest = list(args)
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        if sub is None:
            pytest.fail(
                f"{where} runs `{' '.join([*path, rest[0]])}`, which producers/cli.py does "
                f"not define (yet); it has: {', '.join(sorted(cmd.commands))}"
            )
        path.append(rest.pop(0))
        cmd = sub
    try:
        cmd.make_context(" ".join(path), list(rest))  # it consumes the list it is given
    except Exception as exc:  # click's UsageError, BadParameter...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        pytest.fail(f"{where}: `{shlex.join(['tfq', *args])}`: {message}")
    if path[1:] == ["sandbox"]:  # its flags are argparse's (ops/sandbox/__main__.py)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                build_parser().parse_args(rest)
        except SystemExit:
            message = stderr.getvalue().strip().splitlines()[-1]
            pytest.fail(f"{where}: `{shlex.join(['tfq', *args])}`: {message}")


def test_our_services_run_real_tfq_commands(compose: dict[str, Any]) -> None:
    checked = []
    for name, svc in services(compose).items():
        if not ours(svc):
            continue
        cmd = svc.get("command")
        assert isinstance(cmd, list), f"{name}: give `command` in exec form (a list)"
        assert cmd, f"{name}: give `command`"
        tfq_command(command(svc), f"service {name}")
        checked.append(name)
    assert {"worker", "intake", "sandbox"} <= set(checked)


def test_tfq_environment_variables_are_settings_fields(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.model_config.get("env_prefix") == "TFQ_"
    fields = set(Settings.model_fields)
    for name, svc in services(compose).items():
        env = {k: v for k, v in environment(svc).items() if k.startswith("TFQ_")}
        unknown = sorted(k for k in env if k.removeprefix("TFQ_").lower() not in fields)
        assert not unknown, f"{name}: {unknown} are not fields of worker.settings.Settings"
        with monkeypatch.context() as m:  # and each value is valid for its field
            for key, value in env.items():
                m.setenv(key, interpolated(value))
            try:
                Settings()
            except ValidationError as exc:
                pytest.fail(f"{name}: {exc}")


# --- Redis ------------------------------------------------------------------------------


def test_redis_keeps_jobs_appendonly_noeviction_on_a_volume(compose: dict[str, Any]) -> None:
    svc = services(compose)["redis"]
    cmd = command(svc)
    pairs = set(itertools.pairwise(cmd))
    assert ("--appendonly", "yes") in pairs, cmd
    assert ("--maxmemory-policy", "noeviction") in pairs, cmd
    named = compose.get("volumes") or {}
    data = [str(v).split(":") for v in svc.get("volumes") or []]
    assert any(src in named and dst == "/data" for src, dst, *_ in data), (
        "redis needs a named volume (declared under top-level volumes) at /data"
    )
    for name, tfq in services(compose).items():
        url = environment(tfq).get("TFQ_REDIS_URL")
        if ours(tfq) and role(tfq) != "sandbox":
            assert url, f"{name}: TFQ_REDIS_URL"
            assert url.startswith("redis://redis:6379/"), f"{name}: TFQ_REDIS_URL {url}"


def test_an_acknowledged_job_is_on_disk(compose: dict[str, Any]) -> None:
    """Issue 11: `appendfsync always`, or WAITAOF (Redis 7.2+) with acknowledgements from
    memory turned off nowhere; the image is pinned to a version that has WAITAOF."""
    svc = services(compose)["redis"]
    image = str(svc["image"])
    found = re.fullmatch(r"redis:(\d+)\.(\d+)(?:\.\d+)?(?:-[\w.]+)?", image)
    assert found, f"pin the redis image to a minor version: {image}"
    assert (int(found[1]), int(found[2])) >= (7, 2), f"{image} has no WAITAOF"
    pairs = dict(itertools.pairwise(command(svc)))
    for name, tfq in services(compose).items():
        if ours(tfq):
            assert environment(tfq).get("TFQ_ACK_DURABILITY", "auto") == "auto", name
    assert pairs.get("--appendfsync") in ("always", "everysec"), pairs


# --- profiles: production and demo ------------------------------------------------------


def test_each_profile_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    for profile in PROFILES:
        running = active(compose, profile)
        roles = [role(svc) for svc in running.values()]
        assert {"redis", "flower", "prometheus"} <= set(running), profile
        assert roles.count("worker") >= 1, f"--profile {profile} starts no worker"
        assert roles.count("serve") == 1, f"--profile {profile}: one intake (`tfq serve`)"


def test_no_worker_starts_in_both_profiles(compose: dict[str, Any]) -> None:
    """Compose always starts a profile-less service: a production worker would run in the
    demo, next to the demo's, with production settings."""
    for name, svc in services(compose).items():
        if role(svc) in ("worker", "serve", "dispatcher"):
            profiles = set(svc.get("profiles") or [])
            assert len(profiles & set(PROFILES)) == 1, f"{name}: profiles {profiles}"


def test_healthchecks_ask_ports_the_services_listen_on(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        if not ours(svc) or svc.get("restart") == "no":  # a one-shot exits: nothing to ask
            continue
        check = " ".join(str(w) for w in (svc.get("healthcheck") or {}).get("test") or [])
        assert check, f"{name}: no healthcheck"
        for port in re.findall(r"http://127\.0\.0\.1:(\d+)/", check):
            assert int(port) in listen_ports(svc), f"{name}: healthcheck asks :{port}"


def test_workers_scale(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        if role(svc) == "worker":
            assert "container_name" not in svc, name
            assert not svc.get("ports"), f"{name}: a fixed host port stops --scale"
            assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name


def test_demo_points_at_the_sandbox_with_its_tenants(compose: dict[str, Any]) -> None:
    running = active(compose, "demo")
    sandboxes = [(n, s) for n, s in running.items() if role(s) == "sandbox"]
    assert len(sandboxes) == 1, "the demo profile needs the sandbox"
    name, sandbox = sandboxes[0]
    cmd = command(sandbox)
    assert option_value(cmd, "--host") == "0.0.0.0", "listen beyond the container"
    port = option_value(cmd, "--port")
    tenants = option_value(cmd, "--tenants")
    assert port
    assert tenants
    assert tenants.startswith("/app/"), "the image's copy of ops/ is at /app/ops"
    assert (ROOT / tenants.removeprefix("/app/")).is_file(), tenants
    url = f"http://{name}:{port}{SANDBOX_API_PATH}"
    for svc_name, svc in running.items():
        if role(svc) in ("worker", "serve", "dispatcher"):
            env = environment(svc)
            assert env.get("TFQ_API_URL") == url, f"{svc_name}: TFQ_API_URL"
            assert env.get("TFQ_TENANTS_FILE") == tenants, f"{svc_name}: the sandbox's tenants"
            assert env.get("TFQ_KEY_PREFIX") not in (None, "tfq:"), (
                f"{svc_name}: a prefix of its own, so it never works a production queue"
            )
            deps = svc.get("depends_on") or {}
            if role(svc) == "worker":
                assert name in deps, f"{svc_name} starts before the sandbox"


def test_production_uses_tusfacturas_and_a_mounted_tenants_file(compose: dict[str, Any]) -> None:
    running = active(compose, "prod")
    assert not any(role(s) == "sandbox" for s in running.values())
    secrets = compose.get("secrets") or {}
    for name, svc in running.items():
        if role(svc) not in ("worker", "serve", "dispatcher"):
            continue
        env = environment(svc)
        assert env.get("TFQ_API_URL", PRODUCTION_API_URL) == PRODUCTION_API_URL, name
        path = env.get("TFQ_TENANTS_FILE", "")
        assert path, f"{name}: TFQ_TENANTS_FILE"
        # A compose secret (/run/secrets/NAME), or a read-only bind mount of the file.
        secret = path.removeprefix("/run/secrets/")
        binds = [str(v).split(":") for v in svc.get("volumes") or [] if isinstance(v, str)]
        if path.startswith("/run/secrets/"):
            assert secret in (svc.get("secrets") or []), f"{name} mounts no secret {secret}"
            assert (secrets.get(secret) or {}).get("file"), f"secret {secret} names no file"
        else:
            assert any(b[1:] == [path, "ro"] for b in binds), f"{name}: mount it at {path}:ro"


# --- Prometheus -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    doc = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def scrape_targets(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(job, host, port) for every static target and DNS-discovered name."""
    targets = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs") or []:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((job["job_name"], host, int(port)))
        for sd in job.get("dns_sd_configs") or []:
            assert sd.get("type", "SRV") == "A", "A records: compose's DNS has no SRV"
            targets += [(job["job_name"], host, int(sd["port"])) for host in sd["names"]]
    return targets


def test_prometheus_is_mounted_with_its_config(compose: dict[str, Any]) -> None:
    svc = services(compose)["prometheus"]
    flags = dict(str(a).split("=", 1) for a in command(svc) if "=" in str(a))
    config = Path(flags["--config.file"])
    mounts = [str(v).split(":") for v in svc.get("volumes") or []]
    assert any(
        (ROOT / src).resolve() == PROMETHEUS_DIR and Path(dst) == config.parent
        for src, dst, *_ in mounts
    ), f"mount ./ops/deploy/prometheus at {config.parent}"


def test_prometheus_scrapes_services_that_listen_there(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    for rule_file in prometheus_config.get("rule_files") or []:
        assert (PROMETHEUS_DIR / rule_file).is_file(), rule_file
    targets = scrape_targets(prometheus_config)
    jobs = {job for job, _, _ in targets}
    assert {"tfq-intake", "tfq-worker"} <= jobs
    for profile in PROFILES:
        running = active(compose, profile)
        for job, host, port in targets:
            if host == "localhost":
                continue
            found = [s for n, s in running.items() if host in hostnames(n, s)]
            assert found, f"--profile {profile}: job {job}: no service answers to {host!r}"
            for svc in found:
                assert port in listen_ports(svc), (
                    f"--profile {profile}: job {job}: {host} does not listen on {port}"
                )
    by_job = {job: (host, port) for job, host, port in targets}
    for profile in PROFILES:  # the roles behind the two tfq jobs
        running = active(compose, profile)
        host = by_job["tfq-worker"][0]
        assert {role(s) for n, s in running.items() if host in hostnames(n, s)} == {"worker"}
        host = by_job["tfq-intake"][0]
        assert {role(s) for n, s in running.items() if host in hostnames(n, s)} == {"serve"}


# --- alert rules ------------------------------------------------------------------------

REQUIRED_ALERTS = {
    "TfqQueueAgeHigh",
    "TfqArchiveLagging",
    "TfqPdfsGivenUp",
    "TfqUnknownJobs",
    "TfqLanesPaused",
    "TfqCallbacksDeadLettered",
    "TfqServiceDown",
    "TfqApiErrorRate",
    "TfqNoWorkers",
    "TfqIntakeDown",
}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported_samples(redis_url: str) -> set[str]:
    """Every sample name tfq exposes: the workers' metrics and the queue collector's."""
    families = [m for m in REGISTRY.collect() if m.name.startswith("tfq_")]
    client = redis.Redis.from_url(redis_url)
    try:
        store = LaneStore(client, Keys(unique_prefix("deploy")))  # a fresh prefix: reads only
        families += list(queue_registry(store).collect())
    finally:
        client.close()
    names = set()
    for family in families:
        names.update(family.name + s for s in SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_alert_rules_are_complete(alert_rules: list[dict[str, Any]]) -> None:
    names = [rule.get("alert") for rule in alert_rules]
    assert None not in names, "recording rules belong elsewhere"
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(names)
    for rule in alert_rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = ROOT / rule["annotations"]["runbook_url"]
        assert runbook.parent == RUNBOOKS_DIR, rule["alert"]
        assert runbook.is_file(), rule["alert"]


def test_alert_rules_use_metrics_tfq_exports(
    alert_rules: list[dict[str, Any]], exported_samples: set[str]
) -> None:
    used: set[str] = set()
    for rule in alert_rules:
        names = set(re.findall(r"\btfq_[a-z0-9_]+\b", rule["expr"]))
        unknown = names - exported_samples
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} are not exported by tfq"
        used |= names
    jobs = {"tfq-worker", "tfq-intake"}
    scraped = set(re.findall(r'job="([^"]+)"', " ".join(r["expr"] for r in alert_rules)))
    assert scraped <= jobs | {"flower", "prometheus"}, scraped
    for metric in (
        "tfq_oldest_queued_job_age_seconds",
        "tfq_unknown_jobs",
        "tfq_paused_lanes",
        "tfq_service_down",
        "tfq_callbacks_dead",
        "tfq_api_calls_total",
        "tfq_archive_oldest_age_seconds",
        "tfq_pdfs_failed_total",
    ):
        assert metric in used, f"no alert watches {metric}"


def test_prometheus_jobs_in_alerts_exist(
    alert_rules: list[dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    jobs = {job["job_name"] for job in prometheus_config["scrape_configs"]}
    for rule in alert_rules:
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, f"{rule['alert']}: no scrape job {job}"


# --- the Dockerfile ---------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_installs_the_project_and_runs_tfq() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    entrypoint = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entrypoint, 'ENTRYPOINT ["tfq"]'
    assert json.loads(entrypoint[-1]) == ["tfq"], 'ENTRYPOINT ["tfq"] (exec form)'

    runs = [i for i, (word, args) in enumerate(steps) if word == "RUN" and "pip install" in args]
    install = [i for i in runs if re.search(r"pip install\b[^&;]*\s\.(\s|$)", steps[i][1])]
    assert install, "pip install . (the project from the repository)"
    assert not any(re.search(r"\[[^\]]*dev", steps[i][1]) for i in runs), "no dev extras"

    # The dependencies: exactly requirements.lock (runtime only), hash-checked, before the
    # project, which then brings in nothing of its own.
    locked = [
        i
        for i in runs
        if re.search(r"pip install\b[^&;]*\s--require-hashes\b", steps[i][1])
        and re.search(r"\s-r\s+requirements\.lock(\s|$)", steps[i][1])
    ]
    assert locked, "RUN pip install --require-hashes -r requirements.lock"
    copied_lock = [
        i for i, (word, args) in enumerate(steps) if word == "COPY" and "requirements.lock" in args
    ]
    assert copied_lock, "COPY requirements.lock"
    assert copied_lock[0] < locked[0] < install[0], "the locked dependencies first"
    assert "--no-deps" in steps[install[-1]][1].split(), "pip install --no-deps ."
    for i in runs:
        assert i in locked or "--no-deps" in steps[i][1].split(), (
            f"{steps[i][1]}: every pip install is the lock's (hash-checked) or --no-deps"
        )
    users = [(i, args) for i, (word, args) in enumerate(steps) if word == "USER"]
    assert users, "USER: run as an unprivileged user"
    assert users[-1][0] > install[-1], "switch to the unprivileged user after installing"
    assert users[-1][1].split(":")[0] not in ("root", "0")

    copied = " ".join(args for word, args in steps if word == "COPY")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", project["project"]["readme"]]
    needed += [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for path in needed:
        assert re.search(rf"(^|\s){re.escape(path)}/?(\s|$)", copied), f"COPY {path}"


def test_dockerignore_keeps_secrets_out_and_the_package_in() -> None:
    patterns = {
        line.strip().lstrip("/").rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"tenants.toml", ".env", ".git", ".venv"} <= patterns
    for needed in (
        "pyproject.toml",
        "README.md",
        "worker",
        "producers",
        "ops",
        "ops/testkit/examples",
    ):
        assert needed not in patterns, f".dockerignore drops {needed}, which the image needs"


# --- external validators, when installed ------------------------------------------------


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize("profile", PROFILES)
def test_docker_compose_config_accepts_the_file(profile: str) -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI here (neither the `docker compose` plugin nor "
                    "`docker-compose`): the file is checked as YAML only")  # fmt: skip
    result = subprocess.run(
        [*cli, "--profile", profile, "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def test_promtool_accepts_config_and_rules() -> None:
    tool = promtool()
    for args in (
        ["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        ["check", "rules", str(PROMETHEUS_DIR / "alerts.yml")],
    ):
        result = subprocess.run(
            [tool, *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


# When each alert fires, as promtool unit tests (1 sample a minute). Annotations are
# stripped from the rules under test: these cases are about expressions, `for` and labels.
INTAKE = 'job="tfq-intake", instance="intake:8000"'
WORKER = 'job="tfq-worker", instance="10.0.0.5:9808"'
INTAKE_LABELS = {"job": "tfq-intake", "instance": "intake:8000"}
ALERT_CASES: list[dict[str, Any]] = [
    {  # the age grows 2 minutes a minute: over an hour at 31m, firing 15 minutes later
        "series": {f"tfq_oldest_queued_job_age_seconds{{{INTAKE}}}": "0+120x60"},
        "alert": "TfqQueueAgeHigh",
        "expect": {"40m": [], "50m": [{"severity": "warning", **INTAKE_LABELS}]},
    },
    {
        "series": {f"tfq_unknown_jobs{{{INTAKE}}}": "0x5 2x20"},
        "alert": "TfqUnknownJobs",
        "expect": {"10m": [], "20m": [{"severity": "warning", **INTAKE_LABELS}]},
    },
    {
        "series": {f"tfq_paused_lanes{{{INTAKE}}}": "0x5 1x20"},
        "alert": "TfqLanesPaused",
        "expect": {"10m": [], "20m": [{"severity": "warning", **INTAKE_LABELS}]},
    },
    {  # one 12-minute AFIP window is normal; a longer outage is not
        "series": {f"tfq_service_down{{{INTAKE}}}": "1x12 0x10 1x30"},
        "alert": "TfqServiceDown",
        "expect": {"12m": [], "30m": [], "45m": [{"severity": "warning", **INTAKE_LABELS}]},
    },
    {  # 3 dead-lettered at 10m, then none for over an hour: resolved
        "series": {f"tfq_callbacks_dead{{{INTAKE}}}": "0x10 3x80"},
        "alert": "TfqCallbacksDeadLettered",
        "expect": {
            "5m": [],
            "20m": [{"severity": "warning", **INTAKE_LABELS}],
            "85m": [],
        },
    },
    {  # the database stops at 5m: the oldest waiting job ages a minute a minute
        "series": {f"tfq_archive_oldest_age_seconds{{{INTAKE}}}": "0x5 60+60x40"},
        "alert": "TfqArchiveLagging",
        "expect": {"12m": [], "25m": [{"severity": "warning", **INTAKE_LABELS}]},
    },
    {  # two PDFs given up at 10m, none since: resolved an hour later
        "series": {f"tfq_pdfs_failed_total{{{INTAKE}}}": "0x10 2x80"},
        "alert": "TfqPdfsGivenUp",
        "expect": {"5m": [], "20m": [{"severity": "warning", **INTAKE_LABELS}], "85m": []},
    },
    {  # a third of the calls fail: fires; 1 in 20: not
        "series": {
            f'tfq_api_calls_total{{{WORKER}, endpoint="facturacion/nuevo", outcome="ok"}}': (
                "0+20x60"
            ),
            f'tfq_api_calls_total{{{WORKER}, endpoint="facturacion/nuevo", '
            'outcome="transient"}': "0+1x20 20+10x40",
        },
        "alert": "TfqApiErrorRate",
        "expect": {"20m": [], "50m": [{"severity": "warning"}]},
    },
    {  # ready lanes, and no call from the start: pending at 1m, firing 15 minutes later
        "series": {
            f"tfq_ready_lanes{{{INTAKE}}}": "3x60",
            f"tfq_paused_lanes{{{INTAKE}}}": "0x60",
            f"tfq_service_down{{{INTAKE}}}": "0x60",
            f"tfq_invoicing_calls_total{{{INTAKE}}}": "40x60",
        },
        "alert": "TfqQueueNotMoving",
        "expect": {"10m": [], "20m": [{"severity": "critical", **INTAKE_LABELS}]},
    },
    {  # calls are made: quiet
        "series": {
            f"tfq_ready_lanes{{{INTAKE}}}": "3x60",
            f"tfq_paused_lanes{{{INTAKE}}}": "0x60",
            f"tfq_service_down{{{INTAKE}}}": "0x60",
            f"tfq_invoicing_calls_total{{{INTAKE}}}": "0+1x60",
        },
        "alert": "TfqQueueNotMoving",
        "expect": {"45m": []},
    },
    {  # every ready lane is paused until an AFIP block ends: quiet
        "series": {
            f"tfq_ready_lanes{{{INTAKE}}}": "2x60",
            f"tfq_paused_lanes{{{INTAKE}}}": "2x60",
            f"tfq_service_down{{{INTAKE}}}": "0x60",
            f"tfq_invoicing_calls_total{{{INTAKE}}}": "40x60",
        },
        "alert": "TfqQueueNotMoving",
        "expect": {"45m": []},
    },
    {
        "series": {f"up{{{WORKER}}}": "1x5 0x20"},
        "alert": "TfqNoWorkers",
        "expect": {"5m": [], "15m": [{"severity": "critical"}]},
    },
    {  # no worker discovered at all
        "series": {f"up{{{INTAKE}}}": "1x20"},
        "alert": "TfqNoWorkers",
        "expect": {"10m": [{"severity": "critical"}]},
    },
    {
        "series": {
            f"up{{{WORKER}}}": "1x30",
            'up{job="tfq-worker", instance="10.0.0.6:9808"}': "1x5 0x25",
        },
        "alert": "TfqWorkerDown",
        "expect": {
            "10m": [],
            "20m": [{"severity": "warning", "job": "tfq-worker", "instance": "10.0.0.6:9808"}],
        },
    },
    {  # an audit finds two mismatches at 5m; a clean run at 20m clears them (no `for`)
        "series": {
            f'tfq_audit_findings{{{INTAKE}, kind="mismatch"}}': "0x4 2x15 0x10",
            f'tfq_audit_findings{{{INTAKE}, kind="missing_in_tfq"}}': "0x30",
        },
        "alert": "TfqAuditFindings",
        "expect": {"3m": [], "10m": [{"severity": "warning"}], "25m": []},
    },
    {
        "series": {f"up{{{INTAKE}}}": "1x5 0x20"},
        "alert": "TfqIntakeDown",
        "expect": {"5m": [], "15m": [{"severity": "critical"}]},
    },
]


def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    tool = promtool()
    doc = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    tests = [
        {
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case["series"].items()],
            "alert_rule_test": [
                {
                    "eval_time": at,
                    "alertname": case["alert"],
                    "exp_alerts": [{"exp_labels": labels} for labels in expected],
                }
                for at, expected in case["expect"].items()
            ],
        }
        for case in ALERT_CASES
    ]
    spec = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = subprocess.run(
        [tool, "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
