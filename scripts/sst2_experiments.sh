#!/usr/bin/env bash
# The SST-2 accuracy experiments reported in docs/RESULTS.md (CPU: about an hour on 2 cores).
#   1. full training set: MiniLM teacher fine-tuned, a 3-layer student distilled from it
#      (DistilBERT recipe), and the same student trained without the teacher;
#   2. few labels: 4,000 labelled sentences + the other 63,349 training texts as an unlabelled
#      transfer set, against the baseline trained on the 4,000 alone. The `logits` recipe
#      (KD + CE) lets the teacher's logits over the 67k texts be computed once and cached,
#      which is what makes a 63k transfer set affordable on a CPU.
# Usage: scripts/sst2_experiments.sh [RUNS_DIR] [extra distillab run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/sst2}; shift || true
sst2=../shared/data/sst2
common=(--dataset "$sst2/train.tsv" --validation "$sst2/dev.tsv" --student-layers 0,2,4
        --recipe distilbert --max-length 64 --teacher-epochs 1 --epochs 1 --seed 42 "$@")
python -m core --runs-dir "$runs" run "${common[@]}" --name sst2-full
python -m core --runs-dir "$runs" run "${common[@]}" --name sst2-4k-transfer \
    --max-train-examples 4000 --transfer rest --recipe logits
