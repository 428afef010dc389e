"""Users: the account record and its data rules. Credentials and sessions live in `auth`."""
