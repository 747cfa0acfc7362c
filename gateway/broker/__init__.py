"""Kafka plumbing: the local broker, topic names and set-up, producers."""
