"""Invoices: the intake models, AFIP tables and rules, CUIT checks."""
