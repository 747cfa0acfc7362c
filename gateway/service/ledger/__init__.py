"""The gateway's ledger of unit blocks: the rules, the sequence check and the stores."""
