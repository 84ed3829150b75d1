"""Settings of the Leaky Notes connector."""

API_BASE = "http://api.leaky-notes.example/v2"

# Planted problems: credentials written into the code.
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0"
