"""MerchantOnboardingWorkflow, id `merchant:{merchant_id}`: the merchant row, then its Stripe
connected account (where payouts go). No compensation: every step is retried until it lands,
and a refused account creation leaves the merchant without a payout account for an operator."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.activities.merchants import MerchantActivities
    from payments.schema.messages import ConnectedAccountRequest, NewMerchant, PayoutAccount
    from payments.workflows.policies import DB_STEP, STRIPE_STEP


def workflow_id(merchant_id: str) -> str:
    return f"merchant:{merchant_id}"


@workflow.defn
class MerchantOnboardingWorkflow:
    @workflow.run
    async def run(self, merchant: NewMerchant) -> str | None:
        await workflow.execute_local_activity_method(MerchantActivities.record_merchant, merchant, **DB_STEP)
        if merchant.payout_account:
            return merchant.payout_account
        account_id = await workflow.execute_activity_method(
            MerchantActivities.create_connected_account,
            ConnectedAccountRequest(merchant.merchant_id, merchant.currency),
            **STRIPE_STEP,
        )
        await workflow.execute_local_activity_method(
            MerchantActivities.attach_payout_account,
            PayoutAccount(merchant.merchant_id, account_id),
            **DB_STEP,
        )
        return account_id
