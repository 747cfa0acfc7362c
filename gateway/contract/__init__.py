"""The event contract: Avro schemas, single-object codec, event models, signatures, keys."""
