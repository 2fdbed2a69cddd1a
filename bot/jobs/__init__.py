"""The worker process and its scheduled jobs."""
