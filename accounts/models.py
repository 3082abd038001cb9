"""Account records. Each concern keeps its models in its own section below."""
