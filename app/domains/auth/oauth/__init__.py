"""Sign-in with external OAuth 2.0 and OpenID Connect providers."""
