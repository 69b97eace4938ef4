"""The twelve stage functions. Each is `stage(ctx) -> None`: it reads its inputs (artifacts, the
original), writes its outputs as artifacts, and can run again safely (idempotent). What each reads
and writes, and the order they run in, is declared once in pipeline/graph.py."""
