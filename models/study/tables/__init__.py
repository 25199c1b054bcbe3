"""The paper's Tables 4–10 as functions: each takes data and settings and returns table frames.

One module per table family; :mod:`models.study.headline` holds Tables 1–3,
:mod:`models.study.system_fit` the fitting of one system both ways and its paper layout, and
:mod:`models.study.run` writes whatever these return.
"""
