"""Pure rules of webhook deliveries: which event is sent, when to retry, whose slots."""
