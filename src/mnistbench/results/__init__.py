"""What a run leaves behind and what it means: the flat record and its rules, the results file,
run folders, loading them all back, the measures and statistics, and the compare gate."""
