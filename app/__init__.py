"""The FastAPI service: application factory, cross-cutting modules and domain packages."""
