"""The gateway pipeline: judge each raw event, record the verdict, route it."""
