"""Jobs: what callers submit, and the lifecycle each one goes through."""
