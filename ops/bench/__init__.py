"""`make bench`: the full pipeline against a ceiling measured in the same run (see README, Performance)."""
