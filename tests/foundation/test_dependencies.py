"""pyproject.toml declares exactly what the code imports.

A missing declaration works by accident (another package pulled it in) until
that package changes; an extra one installs what nothing uses. So the
declared lists are compared with the imports themselves, parsed with ``ast``
and mapped to distributions through ``importlib.metadata``:

- ``dependencies``: the third-party imports of ``coves/`` and ``nurseries/``;
- the ``dev`` extra: those of ``tests/``, ``demo/`` and ``scripts/`` that the
  runtime does not already bring, plus tools nothing imports (pytest plugins,
  command-line programs such as ruff and mypy);
- the ``bench`` extra: the libraries ``bench/`` imports beyond those (optional:
  the benchmarks skip what is not installed).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = frozenset({"coves", "nurseries", "tests", "bench", "demo"})
SKIPPED_DIRS = frozenset({"node_modules", ".venv", "__pycache__"})
RUNTIME_DIRS = ("coves", "nurseries")
DEV_DIRS = ("tests", "demo", "scripts")
BENCH_DIRS = ("bench",)


def normalize(name: str) -> str:
    """PEP 503 normalisation: ``PyJWT`` and ``psycopg_pool`` compare as pyjwt, psycopg-pool."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match is not None, requirement
    return normalize(match.group(1))


def python_files(directory: str) -> Iterable[Path]:
    for path in sorted((ROOT / directory).rglob("*")):
        if SKIPPED_DIRS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix == ".py":
            yield path
        elif path.suffix == "" and path.read_bytes()[:64].startswith(b"#!/usr/bin/env python"):
            yield path  # scripts/gen_config_table and friends


def top_level_imports(path: Path) -> Iterator[str]:
    """The top-level module of every absolute import in ``path``, wherever it stands
    (functions, ``try`` blocks, ``TYPE_CHECKING``)."""
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def imported_modules(directories: Iterable[str]) -> dict[str, set[str]]:
    """Top-level third-party module name -> the files importing it."""
    found: dict[str, set[str]] = defaultdict(set)
    for directory in directories:
        for path in python_files(directory):
            for top in top_level_imports(path):
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found[top].add(str(path.relative_to(ROOT)))
    return found


def distributions(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """Distribution (normalised) -> the files importing it. A module that is not
    installed (bench's optional libraries) is taken to be its own distribution."""
    owners = metadata.packages_distributions()
    found: dict[str, set[str]] = defaultdict(set)
    for module, files in modules.items():
        for dist in owners.get(module, [module]):
            found[normalize(dist)] |= files
    return found


def project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {"dependencies": data["dependencies"], **data["optional-dependencies"]}


def is_tool(dist: str) -> bool:
    """A pytest plugin or a command-line program: used without being imported."""
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    if any(ep.group in ("pytest11", "console_scripts") for ep in found.entry_points):
        return True
    return any(f.parts[:3] == ("..", "..", "..") and f.parts[3] == "bin" for f in found.files or ())


def _explain(what: str, names: Iterable[str], where: dict[str, set[str]]) -> str:
    return "; ".join(f"{what} {name} ({', '.join(sorted(where[name])[:3])})" for name in names)


def test_no_requirement_is_listed_twice() -> None:
    seen: dict[str, str] = {}
    twice = []
    for group, requirements in project().items():
        for requirement in requirements:
            name = requirement_name(requirement)
            if name in seen:
                twice.append(f"{name} in {seen[name]} and {group}")
            seen[name] = group
    assert not twice, twice


def test_dependencies_are_exactly_the_runtime_imports() -> None:
    imported = distributions(imported_modules(RUNTIME_DIRS))
    declared = {requirement_name(r) for r in project()["dependencies"]}
    missing = sorted(set(imported) - declared)
    unused = sorted(declared - set(imported))
    assert not missing, _explain("imported but not declared:", missing, imported)
    assert not unused, f"declared but imported by nothing in coves/ or nurseries/: {unused}"


def test_the_dev_extra_is_what_tests_import_and_the_tools() -> None:
    groups = project()
    runtime = {requirement_name(r) for r in groups["dependencies"]}
    imported = distributions(imported_modules(DEV_DIRS))
    declared = {requirement_name(r) for r in groups["dev"]}
    missing = sorted(set(imported) - runtime - declared)
    assert not missing, _explain("imported by tests but not in [dev]:", missing, imported)
    not_imported = declared - set(imported)
    unused = sorted(name for name in not_imported if not is_tool(name))
    assert not unused, f"in [dev], neither imported nor a pytest plugin or a command: {unused}"


def test_the_bench_extra_is_what_only_the_benchmarks_import() -> None:
    groups = project()
    others = {requirement_name(r) for group in ("dependencies", "dev") for r in groups[group]}
    imported = distributions(imported_modules(BENCH_DIRS))
    declared = {requirement_name(r) for r in groups["bench"]}
    assert set(imported) - others == declared, _explain(
        "bench/ imports", sorted(set(imported) - others - declared), imported
    )


def test_the_check_sees_what_it_must() -> None:
    """The scan itself: it finds imports in functions and ``try`` blocks, maps import
    names that differ from their distribution's, and skips first-party and stdlib."""
    runtime = distributions(imported_modules(RUNTIME_DIRS))
    assert {"pillow", "pyjwt", "dnspython", "python-dotenv", "psycopg-pool"} <= set(runtime)
    assert "werkzeug" in runtime and "httpcore" in runtime
    bench = distributions(imported_modules(BENCH_DIRS))
    assert {"libipld", "dag-cbor", "cbor2"} <= set(bench)  # imported inside try blocks
    dev_modules = imported_modules(DEV_DIRS)
    assert "pytest" in dev_modules and "coves" not in dev_modules and "os" not in dev_modules
    assert is_tool("ruff") and is_tool("pytest-trio") and not is_tool("orjson")


def test_the_application_does_not_import_the_runtime() -> None:
    """``coves/`` is the application, ``nurseries/`` the supervised runtime built on it:
    only the ``coves`` command (coves/cli.py), which starts that runtime, reaches into it.
    Anything both need (the circuit breaker, say) lives in ``coves/``."""
    offenders = {
        str(path.relative_to(ROOT))
        for path in python_files("coves")
        if "nurseries" in set(top_level_imports(path))
    }
    assert offenders == {"coves/cli.py"}
