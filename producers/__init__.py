"""The ways in: the Python client, the `tfq` command line and the HTTP intake."""
