"""The connector's exceptions, grouped by what the caller should do about them:
stop and tell the admin (fatal), back off and try again (retriable), or park
this one record and go on with the rest (skippable). Each carries its context."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""


class FatalError(ConnectorError):
    """Stop the run and tell the admin: nothing will work until someone acts."""


class RetriableError(ConnectorError):
    """A passing fault: back off and try again."""


class SkippableError(ConnectorError):
    """This record cannot be processed now; park it and go on with the others."""


class ConfigurationError(FatalError):
    """A setting or file is missing or invalid; the message says which and how to fix it."""


class AuthenticationFailed(FatalError):
    """The org refused the credentials (OAuth error and description included)."""


class QuotaExhausted(FatalError):
    """The org's daily API usage reached the share the connector may use; resume later."""

    def __init__(self, used: int, total: int, share: float):
        super().__init__(f"API usage {used}/{total} reached the configured share {share:.0%} of the daily "
                         "limit; stopping cleanly, the next run resumes where this one stopped")
        self.used, self.total, self.share = used, total, share


class DailyLimitReached(QuotaExhausted):
    """Salesforce itself refused a call because the org's daily API limit is used up
    (REQUEST_LIMIT_EXCEEDED, TotalRequests): retrying cannot help until usage falls."""

    def __init__(self, message: str, used: int = 0, total: int = 0):
        FatalError.__init__(self, f"the org's daily API limit is used up ({message}); not retried: the next run "
                            "resumes once the org's rolling 24-hour usage is below its limit")
        self.used, self.total, self.share = used, total, 1.0


class SalesforceApiError(ConnectorError):
    """Salesforce answered with an error; carries the status, errorCode and URL."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None,
                 url: str | None = None, object_name: str | None = None, record_id: str | None = None):
        context = ", ".join(f"{k}={v}" for k, v in (("status", status), ("errorCode", error_code),
                                                     ("object", object_name), ("record", record_id),
                                                     ("url", url)) if v)
        super().__init__(f"{message} ({context})" if context else message)
        self.status, self.error_code, self.url = status, error_code, url
        self.object_name, self.record_id = object_name, record_id


class TransientApiError(SalesforceApiError, RetriableError):
    """A Salesforce error worth retrying (5xx, lock contention, concurrency limits, dropped connections)."""


class PermanentApiError(SalesforceApiError, FatalError):
    """A Salesforce error that retrying will not fix."""
