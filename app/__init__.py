"""FastAPI service template: accounts, sessions, rate limiting, outbox and observability."""
