"""Infrastructure every OpenV service may use: Kafka, HTTP, database, S3, telemetry,
migrations, health, serving and the service lifecycle.

Unlike `openv_contracts`, any service's change may touch these helpers; they carry no message
shapes. Nothing here knows about any one service's internals.
"""
