"""The webhooks service: tells client apps when their videos change (signed, retried)."""
