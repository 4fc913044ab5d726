"""The pure core: a pod and frozen settings in, an injected pod and reasons out. No I/O.

One module per behaviour. Entry point: :func:`webhook.core.injection.inject_pod`.
Nothing in this package imports from any other ``webhook`` sub-package.
"""
