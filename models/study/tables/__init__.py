"""The seed's Tables 4–10 as functions: each takes data and settings and returns table frames.

One module per table family; ``models.study.headline`` holds Tables 1–3 and the shared fitting helpers,
and ``scripts/run_all.py`` writes whatever these return.
"""
