"""The `campaign` command: the composition root, the one place that imports producer and worker."""
