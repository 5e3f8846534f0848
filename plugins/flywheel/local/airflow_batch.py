"""Run several ``airflow`` CLI commands in one interpreter: ``python -m flywheel.local.airflow_batch JSON``,
with JSON a list of argument lists, in the environment of one Airflow home.

Each ``airflow`` process spends about 3 s importing Airflow before it does anything; preparing a home
(migrate, pools, serialize) and queueing a backfill took 10 such processes (about 35 s) before every
``make demo`` and every scheduler test, and takes two now. The commands are parsed and run as Airflow's
own entry point runs one (``airflow/__main__.py``), in order; the first that raises stops the rest, and
the process exits non-zero with its traceback.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for command in json.loads(argv[0]):
        print(f"$ airflow {' '.join(command)}", flush=True)
        args = parser.parse_args(command)
        args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
