"""Postgres, HTTP and metrics implementations of the service layer's ports."""
