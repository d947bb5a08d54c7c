"""Use cases of the webhooks service: recording deliveries, dispatching them, secrets."""
