"""StripeBalanceWorkflow, started daily by the `stripe-balance` Schedule: the platform's balance at
Stripe against the ledger (payments/activities/stripe_balance.py). The check sets the gauge; the run's
result lists each currency's figures for whoever looks."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.activities.stripe_balance import StripeBalance
    from payments.schema.messages import StripeBalanceCheck
    from payments.workflows.policies import RECONCILE_PAGE


@workflow.defn
class StripeBalanceWorkflow:
    @workflow.run
    async def run(self) -> list[StripeBalanceCheck]:
        checks: list[StripeBalanceCheck] = await workflow.execute_activity_method(
            StripeBalance.check_stripe_balance, **RECONCILE_PAGE
        )
        for check in checks:
            if check.unexplained:
                workflow.logger.warning(
                    "Stripe's %s balance and the ledger differ by %d", check.currency, check.unexplained
                )
        return checks
