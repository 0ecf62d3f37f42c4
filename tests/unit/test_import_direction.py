"""The house's rules, read from the source (imports inside functions included), so it stays this way:
every arrow between the product's layers points one way, the product never imports its tooling,
the tools share the local stack and not each other, no route module imports another, and messages
come from payments.schema.messages."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLING = {"bench", "chaos", "devstack", "drills", "stripe_emulator", "tests"}
# What each layer of the product may import, itself included. The API starts workflows and never
# runs their steps; the worker process hosts both; the operator CLI sits on top.
LAYERS = {
    "config": {"config"},
    "schema": {"schema", "config"},
    "activities": {"activities", "schema", "config"},
    "workflows": {"workflows", "activities", "schema", "config"},
    "api": {"api", "workflows", "schema", "config"},
    "workers": {"workers", "workflows", "activities", "schema", "config"},
    "cli": {"cli", "workers", "api", "workflows", "activities", "schema", "config"},
}
# The tools depend on the product and the local stack, never on one another.
TOOLS = {
    "devstack": {"devstack"},
    "bench": {"bench", "devstack"},
    "chaos": {"chaos", "devstack"},
    "drills": {"drills", "devstack"},
    "stripe_emulator": {"stripe_emulator"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _unit(module: str) -> str:
    """`payments.api.routes.x` -> `api`; `devstack.ports` -> `devstack`; anything else: its top name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "payments" and len(parts) > 1 else parts[0]


def imports_by_module(folder: str) -> dict[str, set[str]]:
    """Each module under `folder` -> the modules it imports."""
    return {str(p.relative_to(ROOT)): _imports(p) for p in sorted((ROOT / folder).rglob("*.py"))}


def _ours(module: str) -> bool:
    return module.split(".")[0] in TOOLING | {"payments"}


def test_each_layer_of_the_product_imports_only_the_layers_below_it() -> None:
    offending = {
        path: sorted(m for m in modules if _ours(m) and _unit(m) not in LAYERS[layer])
        for layer in LAYERS
        for path, modules in imports_by_module(f"payments/{layer}").items()
    }
    assert {path: found for path, found in offending.items() if found} == {}


def test_the_product_imports_none_of_its_tooling() -> None:
    offending = {
        path: sorted(m for m in modules if m.split(".")[0] in TOOLING)
        for path, modules in imports_by_module("payments").items()
    }
    assert {path: found for path, found in offending.items() if found} == {}


def test_the_tools_share_the_local_stack_and_not_each_other() -> None:
    offending = {
        path: sorted(m for m in modules if m.split(".")[0] in TOOLING - allowed)
        for tool, allowed in TOOLS.items()
        for path, modules in imports_by_module(tool).items()
    }
    assert {path: found for path, found in offending.items() if found} == {}


def test_no_route_module_imports_another() -> None:
    """What routes share (the Temporal-call policy, access checks, idempotency) lives beside them in
    payments/api/, not in a sibling route module."""
    offending = {
        path: sorted(m for m in modules if m.startswith("payments.api.routes"))
        for path, modules in imports_by_module("payments/api/routes").items()
    }
    assert {path: found for path, found in offending.items() if found} == {}


def test_messages_are_imported_from_their_package_never_from_the_module_of_their_domain() -> None:
    """payments.schema.messages names every message, so one can move to the module of its domain
    (StripeBalanceCheck, from merchant_webhooks to reconciliation) without touching its callers."""
    outside = {
        path: modules
        for folder in ("payments", *sorted(TOOLING))
        for path, modules in imports_by_module(folder).items()
        if not path.startswith("payments/schema/messages/")
    }
    offending = {
        path: sorted(m for m in modules if m.startswith("payments.schema.messages."))
        for path, modules in outside.items()
    }
    assert {path: found for path, found in offending.items() if found} == {}
    assert "payments.schema.messages" in outside["payments/workflows/stripe_balance.py"]


def test_the_installed_distribution_is_the_product_alone() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["payments*"]


def test_the_check_sees_the_imports() -> None:
    """Guards the guard: a path or parsing mistake must not make the rules pass vacuously."""
    api = imports_by_module("payments/api")
    assert "payments.config.settings" in api["payments/api/services.py"]
    assert "payments.workflows.payment" in api["payments/api/routes/payments.py"]
    assert "devstack.throwaway" in imports_by_module("chaos")["chaos/runner.py"]
    assert len(api) > 20 and set(LAYERS) | {"__init__.py", "__main__.py"} >= {
        p.name for p in (ROOT / "payments").iterdir() if p.name != "__pycache__"
    }
