"""The `requests.Session` every Salesforce call goes through: TLS verified against
the system store or an explicitly trusted certificate, default timeouts, and
connection reuse. It never turns certificate verification off."""

from __future__ import annotations

from typing import Any

import requests

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds


class SalesforceSession(requests.Session):
    """A session whose own `verify` and timeout are kept on every request.

    Plain requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment win
    over `session.verify`, so a certificate trusted explicitly (a corporate proxy CA,
    or the org emulator's) would silently be ignored on machines that set them."""

    def __init__(self, ca_cert: str | None = None, timeout: Any = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        if ca_cert:
            self.verify = ca_cert
        self.timeout = timeout

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[override]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)
