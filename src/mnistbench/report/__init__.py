"""The study's tables, plots and run-to-run comparisons, from the suite's own output.

load -> group -> render. Records come in flat (record.py) from pytest-benchmark JSON,
results lines or a `.benchmarks` folder (load); runs of one configuration on one kind of
hardware become one row, a mean over seeds with its spread and n (group); the tables
(tables_train, tables_svm, tables_twins, provenance) and plots go out as Markdown and CSV
(markdown) and PNG (plots), in the order sections.py gives. Rows are joined by the rules
in record.py, never by test name, id or order, so a laptop CPU run and a GPU run of the
same case meet in one row wherever they were produced.

    mnistbench-report FILES... [--out DIR]      # DIR/report.md, one CSV per table, PNGs
    mnistbench-report compare A B [--out DIR] [--fail-on time:+10% ...]   # case by case; the gate (gate.py)
    mnistbench-report history DIR [--out DIR]   # a trend per configuration over saved runs (history.py)
    mnistbench-report merge FILES -o OUT        # shards' JSON into one (merge.py)
    python -m mnistbench.report ...             # the same (cli.py)
"""
