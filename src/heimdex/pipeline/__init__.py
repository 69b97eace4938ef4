"""The ingestion pipeline: twelve small stages (stages/) run by runner.py with a job ledger."""
