"""The approval gate's pure core: evaluation, risk, waivers and `/gate` commands."""
