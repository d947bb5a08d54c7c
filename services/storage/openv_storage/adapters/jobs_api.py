"""Storage's client of the jobs API: the shared one (`openv_infra.jobs_api`), named here so
the service layer's imports of `JobsUnavailable` keep one home inside the service."""

from openv_infra.jobs_api import JobsApi, JobsUnavailable

__all__ = ["JobsApi", "JobsUnavailable"]
