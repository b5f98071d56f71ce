"""The ledger: what each job cost, in tokens and in money."""
