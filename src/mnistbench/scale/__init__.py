"""Scale-out: where shards run, one shard's pytest, `mnistbench launch` (local or Slurm) and merge."""
