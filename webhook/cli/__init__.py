"""The ``otel-injector`` command line: ``serve``, ``inject``, ``certs``, ``stale``."""
