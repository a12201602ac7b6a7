#!/usr/bin/env bash
# quick: no GPU, no API key (tests + a CPU tuning run). full: on a GPU, the tuning example with
# OpenEvolve and then PatternSearch side by side. Exits non-zero on any failure.
set -euo pipefail
mode=${1:-quick}
cd "$(dirname "$0")"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')" 2>/dev/null || echo none)
case "$gpu" in
  *B200*) kind=B200 ;; *H100*) kind=H100 ;; *H200*) kind=H200 ;; none) kind=none ;; *) kind="other ($gpu)" ;;
esac
echo "== GPU: $kind"
case "$mode" in
  quick)
    echo "== tests"; python3 -m pytest test -q
    echo "== CPU tuning run (stand-in LLM)"
    python3 examples/tune_with_standin.py --cpu --kernels vector_add --max-evaluations 8 --llm-latency 0.5 ;;
  full)
    [ "$kind" = none ] && { echo "full needs a GPU"; exit 2; }
    export HELION_AUTOTUNE_EFFORT=${HELION_AUTOTUNE_EFFORT:-quick} HELION_SKIP_CACHE=1
    echo "== OpenEvolveTuner"; python3 examples/tune_with_standin.py --kernels matmul,softmax,vector_add --llm-latency 2
    echo "== PatternSearch"; python3 examples/tune_with_standin.py --search PatternSearch --kernels matmul,softmax,vector_add ;;
  *) echo "usage: $0 quick|full"; exit 2 ;;
esac
echo "== OK"
