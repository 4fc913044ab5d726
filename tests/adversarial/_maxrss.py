"""Run ``python <args>`` in a child and print its peak RSS (``maxrss-kib=N``) on stderr,
keeping its exit code: ``/usr/bin/time -f %M`` without needing GNU time installed."""

import resource
import subprocess
import sys

code = subprocess.call([sys.executable, *sys.argv[1:]])
print(f"maxrss-kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(code)
