"""What every consumer of the pipeline shares: a SQL database chosen by URL, the
transactional outbox and consumed offsets kept in it, and the consumer process that
commits its effect, its position and its outgoing messages together."""
