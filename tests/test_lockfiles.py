"""The lock files: requirements.lock (the runtime set) and requirements-dev.lock (runtime and
the [dev] extras), made from pyproject.toml by pip-tools (`make lock`).

What runs is what was reviewed: every package is pinned to one version with the sha256 of
its files, the locks are complete (every package the requirements pull in, extras included,
is pinned), the two agree, and both are installed with --require-hashes: by the Makefile's
venv stamps (`make test`, `make demo`; run here with a stand-in python) and by the container
image. The project itself is installed after them with --no-deps, so nothing else gets in.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
LOCKS = (LOCK, DEV_LOCK)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """The pins of a pip requirements file, each checked to be `name==version --hash=...`."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += " " + line.removesuffix("\\")
        if not line.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    assert not pending, f"{path.name}: ends in a continuation line"

    pins: dict[NormalizedName, Pin] = {}
    for line in logical:
        spec, _, options = line.partition(" --")
        spec = spec.strip()
        assert not spec.startswith("-"), f"{path.name}: an option line ({line[:60]}...)"
        req = Requirement(spec)
        where = f"{path.name}: {spec}"
        assert req.url is None, f"{where}: a URL, not a pin"
        assert not req.extras, f"{where}: extras (pip-compile --strip-extras)"
        assert req.marker is None, f"{where}: an environment marker"
        specs = list(req.specifier)
        assert len(specs) == 1, f"{where}: pin one version (==)"
        assert specs[0].operator == "==", f"{where}: pin one version (==)"
        assert "*" not in specs[0].version, f"{where}: pin one version (==), no wildcard"
        hashes = tuple(("--" + options).split()) if options else ()
        assert hashes, f"{where}: no --hash=sha256:..."
        for option in hashes:
            assert HASH.fullmatch(option), f"{where}: {option[:40]}: only --hash=sha256:"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = Pin(name, specs[0].version, hashes)
    return pins


def runtime_requirements() -> list[Requirement]:
    """What the installs need: the project's dependencies and its build backend (the project
    is built with --no-build-isolation, from the locked setuptools)."""
    return [
        Requirement(r)
        for r in PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]
    ]


def dev_requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]


def wanted() -> dict[Path, list[Requirement]]:
    return {LOCK: runtime_requirements(), DEV_LOCK: runtime_requirements() + dev_requirements()}


# --- the files --------------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_package_is_pinned_with_hashes(lock: Path) -> None:
    pins = read_lock(lock)
    assert len(pins) > 10, f"{lock.name}: only {len(pins)} pins"
    head = lock.read_text(encoding="utf-8").splitlines()[:10]
    assert any("make lock" in line for line in head), f"{lock.name}: say how to regenerate it"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_pyproject_requirements_are_locked_at_allowed_versions(lock: Path) -> None:
    pins = read_lock(lock)
    for req in wanted()[lock]:
        pin = pins.get(canonicalize_name(req.name))
        assert pin, f"{req} (pyproject.toml) is not in {lock.name}: run `make lock`"
        assert req.specifier.contains(pin.version, prereleases=True), (
            f"{lock.name} pins {pin.name}=={pin.version}, pyproject.toml wants {req}: "
            "run `make lock`"
        )


def test_dev_lock_pins_the_runtime_lock_as_it_is() -> None:
    """`make demo` reuses a fresh dev install: it must hold the runtime set, same versions."""
    runtime, dev = read_lock(LOCK), read_lock(DEV_LOCK)
    for name, pin in runtime.items():
        assert name in dev, f"{name} is in {LOCK.name}, not in {DEV_LOCK.name}"
        assert dev[name].version == pin.version, (
            f"{name}: {LOCK.name} pins {pin.version}, {DEV_LOCK.name} {dev[name].version}"
        )


# --- complete, and what this suite runs on ----------------------------------------------


def dependency_closure(roots: Iterable[Requirement]) -> set[NormalizedName]:
    """Every distribution the requirements pull in on this platform, their extras included,
    read from the installed metadata."""
    names: set[NormalizedName] = set()
    expanded: set[tuple[NormalizedName, str]] = set()
    todo = [r for r in roots if r.marker is None or r.marker.evaluate()]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        names.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed here: run `make venv`")
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for line in requires:
                dep = Requirement(line)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append(dep)
    return names


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_the_lock_is_complete_and_holds_nothing_else(lock: Path) -> None:
    """Hash-checking mode refuses an unpinned dependency; this says which one, and before an
    install does (--strip-extras keeps the extras' packages, not the extras). Nothing else
    either: no dev extra in the runtime lock, no pin left over from an older pyproject.toml."""
    needed, pinned = dependency_closure(wanted()[lock]), set(read_lock(lock))
    assert not needed - pinned, f"{lock.name} misses {sorted(needed - pinned)}: `make lock`"
    assert not pinned - needed, f"{lock.name}: {sorted(pinned - needed)} are not needed"


def test_this_environment_is_the_dev_lock() -> None:
    """The suite runs on what the dev lock pins (`make test` reinstalls when it changes)."""
    wrong = []
    for pin in read_lock(DEV_LOCK).values():
        try:
            installed = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            wrong.append(f"{pin.name} {installed} (locked: {pin.version})")
    assert not wrong, f"not the locked versions, run `make venv`: {wrong}"


# --- the installs: the Makefile ---------------------------------------------------------


def pip_install(args: list[str]) -> list[str] | None:
    """The arguments of a `python -m pip install ...` call, None for any other call."""
    if args[:3] == ["-m", "pip", "install"]:
        return args[3:]
    return None


def assert_locked_install(args: list[str], lock: str) -> None:
    assert "--require-hashes" in args, f"pip install {shlex.join(args)}: --require-hashes"
    assert ("-r", lock) in set(itertools.pairwise(args)), f"-r {lock}: {args}"


def assert_project_install(args: list[str]) -> None:
    assert "--no-deps" in args, f"pip install {shlex.join(args)}: the project with --no-deps"
    assert ("-e", ".") in set(itertools.pairwise(args)), f"-e .: {args}"


class MakeRun:
    """The Makefile in a scratch directory, with .venv/bin/python and .venv/bin/tfq stand-ins
    that only record how they are called."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "calls.log"
        shutil.copy(ROOT / "Makefile", root / "Makefile")
        for name in ("pyproject.toml", LOCK.name, DEV_LOCK.name):
            (root / name).write_text("# stand-in\n", encoding="utf-8")
        self.age(LOCK.name, DEV_LOCK.name, "pyproject.toml", by=-1000)
        bindir = root / ".venv" / "bin"
        bindir.mkdir(parents=True)
        for tool in ("python", "tfq"):
            script = bindir / tool
            script.write_text(
                f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "{self.log}"\n', encoding="utf-8"
            )
            script.chmod(0o755)

    def age(self, *names: str, by: float) -> None:
        """Set the files' modification time to now + BY seconds."""
        when = time.time() + by
        for name in names:
            os.utime(self.root / name, (when, when))

    def __call__(self, target: str) -> list[list[str]]:
        """`make TARGET`; the stand-ins' calls, each as its argument list (tool first)."""
        self.log.write_text("", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
        result = subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return [shlex.split(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def make(tmp_path: Path) -> MakeRun:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return MakeRun(tmp_path)


def pip_calls(calls: list[list[str]]) -> list[list[str]]:
    out = []
    for tool, *args in calls:
        install = pip_install(args) if tool == "python" else None
        assert tool == "tfq" or install is not None, f"unexpected: {tool} {shlex.join(args)}"
        if install is not None:
            out.append(install)
    return out


def test_make_test_installs_the_dev_lock_with_hashes(make: MakeRun) -> None:
    first, project = pip_calls(make("venv"))
    assert_locked_install(first, DEV_LOCK.name)
    assert_project_install(project)
    assert make("venv") == [], "an up-to-date venv is not reinstalled"

    make.age(DEV_LOCK.name, by=+1000)  # a changed lock is installed again
    first, project = pip_calls(make("venv"))
    assert_locked_install(first, DEV_LOCK.name)
    assert_project_install(project)


def test_make_demo_installs_the_runtime_lock_with_hashes(make: MakeRun) -> None:
    *installs, demo = make("demo")
    assert demo == ["tfq", "demo"]
    first, project = pip_calls(installs)
    assert_locked_install(first, LOCK.name)
    assert_project_install(project)

    make.age(LOCK.name, by=+1000)
    first, project = pip_calls(make("demo")[:-1])
    assert_locked_install(first, LOCK.name)
    assert_project_install(project)


def test_make_demo_reuses_a_fresh_dev_install(make: MakeRun) -> None:
    assert len(pip_calls(make("venv"))) == 2
    assert make("demo") == [["tfq", "demo"]], "the dev install already holds the runtime set"

    make.age(LOCK.name, by=+1000)  # newer than the dev install: install it
    first, _ = pip_calls(make("demo")[:-1])
    assert_locked_install(first, LOCK.name)


def test_every_pip_install_in_the_makefile_is_locked_or_no_deps() -> None:
    """Outside `make lock` (pip-tools, in a throwaway venv), pip installs the locks and the
    project without its dependencies; nothing else."""
    text = re.sub(r"\\\n", " ", (ROOT / "Makefile").read_text(encoding="utf-8"))
    rule = ""
    for line in text.splitlines():
        if line and not line.startswith(("\t", "#", " ")) and ":" in line and "=" not in line:
            rule = line.split(":", 1)[0].strip()
        for command in re.findall(r"pip install\b[^;&|]*", line):
            if rule == "lock":
                continue
            args = shlex.split(command)[2:]
            if "--no-deps" not in args:
                assert "--require-hashes" in args, f"{rule}: `{command.strip()}`"
                assert "-r" in args, f"{rule}: `{command.strip()}`"


# --- the installs: the container image --------------------------------------------------


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    steps = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    runs = [s for s in steps if s.startswith("RUN ") and "pip install" in s]
    assert any(
        "--require-hashes" in s.split() and re.search(r"-r\s+requirements\.lock\b", s) for s in runs
    ), "RUN pip install --require-hashes -r requirements.lock"
    assert not any(DEV_LOCK.name in s for s in steps), "the image has no dev extras"
    assert any(re.match(r"COPY\s+(\S+\s+)*requirements\.lock\s", s) for s in steps)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert not any(line.strip().lstrip("/") in (LOCK.name, "*.lock") for line in ignored), (
        f".dockerignore keeps {LOCK.name} out of the build"
    )
