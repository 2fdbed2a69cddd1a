"""The LINE adapter: webhook pipeline, resilient Messaging API client, incoming-event model."""
