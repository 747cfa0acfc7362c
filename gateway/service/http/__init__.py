"""The gateway's HTTP interface (aiohttp): ingest, health, readiness, metrics, OpenAPI."""
