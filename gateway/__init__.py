"""The REST gateway: routes built from the ``google.api.http`` annotations of the services."""
