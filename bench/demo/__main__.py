"""``python -m bench.demo [--once]``: run the demo from a checkout of the repository."""

import argparse
import sys

from bench.demo.realnode import run
from bench.demo.story import add_arguments

parser = argparse.ArgumentParser(prog="python -m bench.demo", description="otel-injector's story on a local cluster")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
