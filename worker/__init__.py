"""The outbox worker process: ARQ settings and glue. The logic lives in `app.outbox`."""
