"""Auth: credentials, access and refresh tokens, sessions, and the account endpoints."""
