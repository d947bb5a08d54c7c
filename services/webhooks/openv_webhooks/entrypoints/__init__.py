"""What calls into the webhooks service: the Kafka subscriber and the internal HTTP API."""
