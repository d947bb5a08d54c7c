"""Contracts shared by every OpenV service: messages, envelope, topics, settings, small helpers.

Nothing here knows about any one service's internals.
"""
