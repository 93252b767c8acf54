"""``python -m skgroupsparse``: the ``skgroupsparse`` command line."""

from skgroupsparse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
