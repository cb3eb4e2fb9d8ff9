"""What was decided, and what a change would decide: the decision log, replays (explain, impact, shadow,
on Dask) and the policy diff."""
