"""Test and run kit: harness, local Redis, ledger audit, tenants, webhook receiver."""
