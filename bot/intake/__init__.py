"""The webhook intake: a lean process that verifies, stores and answers GitHub's deliveries.

`connector-gate serve` runs it beside the workers (see bot.intake.link); it loads aiohttp and
the standard library only, so the process GitHub talks to stays small and never waits on a
review's CPU time.
"""
