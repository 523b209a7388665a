"""Runs a test program against a throw-away PostgreSQL cluster (pg_cluster.py):
its connection string in $PINGMA_TEST_PG; the cluster removed after.

    python3 -B with_pg.py PROGRAM [ARGS...]
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_cluster import PgCluster, clean_environment


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with PgCluster() as pg:
        pg.create_database("pingma")
        env = clean_environment({"PINGMA_TEST_PG": pg.conninfo("pingma")})
        return subprocess.call(argv[1:], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
