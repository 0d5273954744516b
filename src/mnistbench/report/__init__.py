"""The study's tables, plots and run-to-run comparisons, from the suite's own output.

load -> group -> render. Records come in flat from pytest-benchmark JSON, results lines or
folders (results.load); runs of one configuration on one kind of hardware become one row,
a mean over seeds with its spread and n (group, over results.stats and results.measures);
the tables (tables_train, tables_svm, tables_twins, provenance) and plots go out as
Markdown and CSV (markdown) and PNG (plots), in the order sections.py gives. Rows are
joined by the rules in results.record, never by test name, id or order, so a laptop CPU
run and a GPU run of the same case meet in one row wherever they were produced.

The top of the package's layers: it reads everything else, nothing else imports it. Its
commands (commands.py) are `mnistbench report`, `mnistbench compare` and `mnistbench history`.
"""
