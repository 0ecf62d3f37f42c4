"""The worker process: workflows and activities on their task queues, the Schedules, the outbox
relay and the merchant-webhook fan-out."""
