"""tfq worker: invoice models, the TusFacturas client, lanes and the Celery tasks."""
