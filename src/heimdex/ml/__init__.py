"""Model adapters: each loads once, batches, runs int8 on CPU, and hides its library behind base.py."""
