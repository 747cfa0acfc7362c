"""The national-registry adapter: a Party's Article 6 ITMO ledger kept from the verified
stream (actions, identifiers, corresponding adjustments), its query API and AEF export."""
