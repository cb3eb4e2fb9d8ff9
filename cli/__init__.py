"""The ``rulesvc`` command line: translates between the shell and :mod:`engine`."""
