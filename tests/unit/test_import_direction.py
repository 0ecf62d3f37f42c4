"""The layers depend one way: the API (the face) never on the worker process, the schema (the core
messages and tables) on nothing of ours. Read from the source, imports inside functions included."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"api", "activities", "bench", "config", "schema", "stripe_emulator", "workers", "workflows"}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Each module of `package` -> the top-level packages it imports (relative imports stay inside)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_api_imports_nothing_from_the_workers() -> None:
    offending = {module: "workers" for module, names in imported_packages("api").items() if "workers" in names}
    assert offending == {}


def test_the_schema_imports_nothing_of_ours_but_itself() -> None:
    offending = {
        module: sorted(names & OURS - {"schema"})
        for module, names in imported_packages("schema").items()
        if names & OURS - {"schema"}
    }
    assert offending == {}


def test_the_check_sees_the_imports() -> None:
    """Guards the guard: a path or parsing mistake must not make the rules pass vacuously."""
    assert "config" in imported_packages("api")["api/services.py"]
    assert "schema" in imported_packages("schema")["schema/balances.py"]
