"""What each asset does, without Dagster: one flow per asset, taking the ledger and the
small client Protocols of `ports`, returning a typed result."""
