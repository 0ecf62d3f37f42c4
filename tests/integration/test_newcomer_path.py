"""The newcomer's path on a real `make dev` stack: `.devstack/env` in a second shell, `payments
demo` (twice), then every example of the README's "Explore a running stack" as pasted."""

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.ports import wait_until
from tests.dev_stack import dev_env, free_ports, interrupt, start_dev, wait_dev_ready
from tests.readme_examples import shell_blocks

REPO = Path(__file__).parents[2]


@dataclass
class DevStack:
    ports: dict[str, int]
    home: Path  # a checkout as a newcomer has it: .venv and the stack's .devstack

    def shell(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`script` in a new bash in the checkout, with none of this process's PAYMENTS_* settings."""
        env = dev_env(self.home / ".devstack", {})
        env.pop("PAYMENTS_DEVSTACK_DIR")
        return subprocess.run(
            ["bash", "-c", script], cwd=self.home, env=env, capture_output=True, text=True, timeout=timeout
        )

    def exported(self, *files: str) -> dict[str, str]:
        """The environment of a shell that sourced these files of `.devstack/`, in this order."""
        shown = self.shell(" && ".join([*(f"source .devstack/{name}" for name in files), "env -0"]))
        assert shown.returncode == 0, shown.stderr
        return dict(line.split("=", 1) for line in shown.stdout.split("\0") if "=" in line)


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    home = tmp_path_factory.mktemp("checkout")
    (home / ".venv").symlink_to(REPO / ".venv")
    ports = free_ports()
    env = dev_env(home / ".devstack", ports)
    process = start_dev(env)
    try:
        wait_dev_ready(process, env)
        # Written once the API answers, just before the banner.
        wait_until((home / ".devstack" / "env").exists, "make dev wrote no .devstack/env", 60)
        yield DevStack(ports, home)
    finally:
        code, output = interrupt(process)
        assert code == 0, output


@pytest.mark.timeout(240)
def test_make_dev_writes_the_stacks_ports_urls_and_a_token_for_another_shell(dev_stack: DevStack) -> None:
    names = dev_stack.exported("env")
    ports = dev_stack.ports
    assert names["API"] == f"http://127.0.0.1:{ports['api']}"
    assert names["TEMPORAL_ADDRESS"] == f"127.0.0.1:{ports['temporal']}"
    assert names["TEMPORAL_UI"] == f"http://127.0.0.1:{ports['temporal_ui']}"
    assert names["STRIPE_API_BASE"] == f"http://127.0.0.1:{ports['stripe_emulator']}"
    assert names["REDIS_URL"] == f"redis://127.0.0.1:{ports['redis']}/0"
    assert names["DATABASE_URL"].startswith(f"postgresql://postgres@127.0.0.1:{ports['postgres']}/")
    assert names["WORKER_METRICS"] == f"http://127.0.0.1:{ports['worker_metrics']}/metrics"
    assert all(names[f"PAYMENTS_{name.upper()}_PORT"] == str(port) for name, port in ports.items())
    assert names["PAYMENTS_DEVSTACK_DIR"] == str((dev_stack.home / ".devstack").resolve())
    # Each URL serves, and the token is an operator's.
    headers = {"Authorization": f"Bearer {names['TOKEN']}"}
    assert httpx.post(f"{names['API']}/users", json={"name": "Ada"}, headers=headers, timeout=20).status_code == 201
    assert httpx.get(f"{names['TEMPORAL_UI']}/", timeout=10).status_code == 200
    assert httpx.get(names["WORKER_METRICS"], timeout=10).status_code == 200
    assert httpx.get(f"{names['STRIPE_API_BASE']}/_emulator/faults", timeout=10).status_code == 200
    # A `payments` command in that shell finds this stack (its PostgreSQL through the ports alone).
    missing = dev_stack.shell("source .devstack/env && .venv/bin/payments inspect tx_missing")
    assert missing.stdout.strip() == "no payment tx_missing", missing.stderr


STATES = {
    "TX_ID": "confirmed",
    "AUTHORIZED_TX_ID": "authorized",
    "PARTIALLY_REFUNDED_TX_ID": "partially_refunded",
    "REFUNDED_TX_ID": "refunded",
    "CANCELED_TX_ID": "canceled",
    "FAILED_TX_ID": "failed",
    "DECLINED_TX_ID": "declined",
    "REQUIRES_ACTION_TX_ID": "requires_action",
}


@pytest.mark.timeout(240)
def test_demo_fills_the_stack_with_a_payment_in_every_state_and_a_second_run_changes_nothing(
    dev_stack: DevStack,
) -> None:
    first = dev_stack.shell("source .devstack/env && .venv/bin/payments demo")
    assert first.returncode == 0, first.stdout + first.stderr
    made = dev_stack.exported("env", "demo.env")
    api, operator = made["API"], {"Authorization": f"Bearer {made['TOKEN']}"}
    for name, status in STATES.items():
        payment = httpx.get(f"{api}/payments/{made[name]}", headers=operator, timeout=10).json()
        assert payment["status"] == status, (name, payment)
    assert httpx.get(f"{api}/payments/{made['FAILED_TX_ID']}", headers=operator).json()["failure_code"]
    payouts = httpx.get(f"{api}/merchants/{made['MERCHANT_ID']}/payouts", headers=operator, timeout=10).json()["data"]
    assert {"id": made["PAYOUT_ID"], "status": "paid"}.items() <= next(
        p for p in payouts if p["id"] == made["PAYOUT_ID"]
    ).items()
    # Each token is its party's: the user sees its payment, the other user gets 404, the merchant its balance.
    as_user = {"Authorization": f"Bearer {made['USER_TOKEN']}"}
    assert httpx.get(f"{api}/payments/{made['TX_ID']}", headers=as_user).status_code == 200
    as_other = {"Authorization": f"Bearer {made['OTHER_USER_TOKEN']}"}
    assert httpx.get(f"{api}/payments/{made['TX_ID']}", headers=as_other).status_code == 404
    as_merchant = {"Authorization": f"Bearer {made['MERCHANT_TOKEN']}"}
    assert httpx.get(f"{api}/merchants/{made['MERCHANT_ID']}/balance", headers=as_merchant).status_code == 200

    second = dev_stack.shell("source .devstack/env && .venv/bin/payments demo")
    assert second.returncode == 0, second.stdout + second.stderr
    again = dev_stack.exported("env", "demo.env")
    ids = [name for name in again if name.endswith("_ID")]
    assert len(ids) >= 12 and all(again[name] == made[name] for name in ids)


@pytest.mark.timeout(300)
def test_every_readme_example_runs_as_pasted_in_a_new_shell(dev_stack: DevStack) -> None:
    """The blocks in order, in one shell that stops at the first failing command or unset variable."""
    script = "\n".join(["set -eu", *shell_blocks("Explore a running stack")])
    ran = dev_stack.shell(script, timeout=240)
    out = ran.stdout
    assert ran.returncode == 0, f"{out}\n{ran.stderr}"
    assert '"status":"ready"' in out and '"name":"Corner Shop"' in out and '"name":"Ada"' in out
    assert '"status":"authorized"' in out and "idempotent-replayed: true" in out
    for status in ("confirmed", "partially_refunded", "canceled", "in_transit"):
        assert f'"status":"{status}"' in out, status
    # the other user's 404 and the second card's decline, nothing else
    assert out.count('"error"') == 2 and '"code":"not_found"' in out and '"code":"card_declined"' in out
    assert '"status":"failed"' in out and '"card_attempts":3' in out  # given up; paid with the third card
    assert '"available":' in out and '"workflow_id":"payment:' in out  # the balance, the timeline
    assert "  ledger   " in out and "refund.succeeded" in out  # inspect's lines, the stream
    assert "PaymentWorkflow" in out and "RefundWorkflow" in out and "input[0].amount: 4200" in out
    assert "payments_http_request_duration_seconds_count{" in out and "payments_captures_total{" in out
    assert re.search(r"\] (\d+)/\1 settlement ", out) and "0 to review" in out  # every phase, the three-way match last
