"""The `admin` fixture of test_admin_api (the connector mirrored and synced once, its admin app
started) for every admin test module."""

from tests.integration.admin.test_admin_api import admin  # noqa: F401
