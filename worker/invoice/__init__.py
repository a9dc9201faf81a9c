"""Invoices, before anything is sent: what a job is and when it is refused.

`envelope` (the job and `validate_envelope`, the one door in), `schema` (the TusFacturas
request body), `fieldtypes` (dates, amounts, flags), `passthrough` (fields tfq does not
know), `rules` (AFIP's rules across fields), `tables` (the API's enumerations), `cuit`.
"""
