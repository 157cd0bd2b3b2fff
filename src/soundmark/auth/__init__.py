"""API tokens: hashed storage, scopes, and monthly and anonymous request quotas."""
