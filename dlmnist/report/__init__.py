"""Reports built from run folders: reports/README.md with tables, curves and the runs' figures."""
