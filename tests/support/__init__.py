"""Real servers the tests start themselves (no mocks of what the product ships against)."""
