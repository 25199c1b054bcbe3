"""Helpers shared by every layer (data_prep, models, scripts): the one exception type for bad
input (:mod:`common.errors`) and safe, all-or-nothing output writing (:mod:`common.files`)."""
