"""The job runner: workers that turn stored deliveries into calls of the orchestration handler."""

from bot.jobs.runner import Handler, JobRunner, retry_delay

__all__ = ["Handler", "JobRunner", "retry_delay"]
