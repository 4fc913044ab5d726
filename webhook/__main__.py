"""``python -m webhook`` runs the same CLI as the ``otel-injector`` console script."""

import sys

from webhook.cli.main import main

sys.exit(main())
