"""The accountant's tools: exports, Libro IVA Digital, the audit against TusFacturas,
and credit notes that undo an invoice."""
