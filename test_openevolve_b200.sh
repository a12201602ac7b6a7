#!/usr/bin/env bash
# quick: no GPU, no API key: the test suite and a CPU tuning run (a few minutes).
# full:  on a GPU: every example on the GPU, the fault-injection run and the side-by-side
#        benchmark (BENCH_KERNELS, default the whole suite, one kernel per command: about 6-8
#        minutes a kernel on an H200 with the default BENCH_SEARCHES; BENCH_KERNELS= skips it) and
#        the warm-start benchmark (WARM_KERNELS, default rms_norm,softmax,matmul; WARM_KERNELS= skips it;
#        WARM_SKIP=PatternSearch,LFBO leaves out Helion's searches: at full effort PatternSearch
#        alone took 474 s on rms_norm on an H200).
# split: on a GPU: the side-by-side benchmark at the kernels' default effort (`full`, or
#        HELION_AUTOTUNE_EFFORT) for each of BENCH_KERNELS (default matmul): PatternSearch, the LLM
#        searches (knowing, hostile, blind; the knowing stand-in knows PatternSearch's pick),
#        LFBOTreeSearch, each group in its own process appending to OUT/benchmark/parts.jsonl,
#        then every pick of the kernel timed again together (30 interleaved rounds) into
#        OUT/benchmark/results.jsonl.
#        BENCH_LLM_SEARCHES replaces the LLM group (e.g. OpenEvolveTuner:blind alone; empty: none).
#        A run cut short (a device slot ending) and started again skips the searches done.
#        At full effort a kernel took 14 (vector_add) to 21 (matmul) minutes on an H200
#        (PatternSearch alone 254-699 s).
#        Logs go to OUT (default ./b200_test_out).
# Every step runs; the script exits non-zero if any failed, and names them.
set -uo pipefail
mode=${1:-quick}
cd "$(dirname "$0")"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')" 2>/dev/null || echo none)
case "$gpu" in
  *B200*) kind=B200 ;; *H100*) kind=H100 ;; *H200*) kind=H200 ;; none) kind=none ;; *) kind="other ($gpu)" ;;
esac
echo "== GPU: $kind"
failed=()
step() {  # step NAME COMMAND...: run it, keep going on failure
  local name=$1; shift
  echo; echo "== $name"
  if "$@"; then echo "-- $name: ok"; else echo "-- $name: FAILED (exit $?)"; failed+=("$name"); fi
}
case "$mode" in
  quick)
    step "tests" python3 -m pytest test -q
    step "CPU tuning run (stand-in LLM)" \
      python3 examples/tune_with_standin.py --cpu --kernels vector_add --max-evaluations 8 --llm-latency 0.5 ;;
  full)
    [ "$kind" = none ] && { echo "full needs a GPU"; exit 2; }
    out=${OUT:-b200_test_out}; mkdir -p "$out"
    export HELION_AUTOTUNE_EFFORT=${HELION_AUTOTUNE_EFFORT:-quick} HELION_SKIP_CACHE=1
    step "vector add: smoke test" python3 examples/helion_vector_add_tuning.py --simple
    step "vector add: tuning" python3 examples/helion_vector_add_tuning.py --llm-latency 2 --record "$out/vector_add.jsonl"
    step "attention: tuning" python3 examples/helion_b200_attention_tuning.py --llm-latency 2 --record "$out/attention.jsonl"
    step "raw Triton matmul: tune_config_space" \
      python3 examples/triton_matmul_tune_config_space.py --llm-latency 2 --record "$out/triton_matmul.jsonl"
    step "fault injection" python3 test/fault_injection_gpu.py --out "$out"
    # a decision round's cost and noise at 200, 50 and 20 ms per config: the search's 20 ms
    # default was measured on an H200 (docs/benchmarks.md, "Short decision rounds")
    retime=${RETIME_KERNELS-vector_add,softmax,layer_norm,attention}
    [ -n "$retime" ] && step "decision round cost" python3 examples/benchmark_retime_cost.py \
      --kernels "$retime" --rounds 8 --results "$out/retime_cost.jsonl"
    # one kernel per command fits the 10-minute GPU slots; the rows accumulate in one file
    kernels=${BENCH_KERNELS-rms_norm,matmul,softmax,layer_norm,attention,vector_add,matmul_big,bias_grad}
    searches=${BENCH_SEARCHES-PatternSearch,LFBOTreeSearch,OpenEvolveTuner:knowing,LLMGuidedSearch:knowing,OpenEvolveTuner:blind,OpenEvolveTuner:dead}
    for k in ${kernels//,/ }; do
      step "side-by-side benchmark ($k)" python3 examples/benchmark_openevolve_vs_baseline.py \
        --effort "$HELION_AUTOTUNE_EFFORT" --llm-latency 10 --kernels "$k" --searches "$searches" \
        --known auto --results "$out/benchmark/results.jsonl"
    done
    [ -n "$kernels" ] && python3 examples/benchmark_openevolve_vs_baseline.py --report "$out/benchmark/results.jsonl"
    # warm start: shape A tuned once, then shape B cold, warm, warm without an LLM, and again
    # (measured on an H200: 5-6 minutes a kernel at full effort with WARM_SKIP=PatternSearch,LFBO;
    # full-effort PatternSearch alone took 8 minutes on rms_norm; quick effort not measured)
    warm=${WARM_KERNELS-rms_norm,softmax,matmul}
    for k in ${warm//,/ }; do
      step "warm-start benchmark ($k)" python3 examples/benchmark_warm_start.py \
        --effort "$HELION_AUTOTUNE_EFFORT" --llm-latency 10 --kernels "$k" --skip "${WARM_SKIP-}" \
        --results "$out/benchmark/warm_start.jsonl"
    done
    [ -n "$warm" ] && python3 examples/benchmark_warm_start.py --report "$out/benchmark/warm_start.jsonl" ;;
  split)
    [ "$kind" = none ] && { echo "split needs a GPU"; exit 2; }
    out=${OUT:-b200_test_out}; mkdir -p "$out/benchmark"
    parts=$out/benchmark/parts.jsonl
    kernels=${BENCH_KERNELS-matmul}
    for k in ${kernels//,/ }; do
      b=(python3 examples/benchmark_openevolve_vs_baseline.py --kernels "$k" --effort "${HELION_AUTOTUNE_EFFORT:-full}"
         --llm-latency 10 --retime-rounds 0 --known auto --resume --results "$parts")
      step "$k: PatternSearch" "${b[@]}" --searches PatternSearch
      llm=${BENCH_LLM_SEARCHES-OpenEvolveTuner:knowing,LLMGuidedSearch:knowing,OpenEvolveTuner:blind,OpenEvolveTuner:hostile}
      [ -n "$llm" ] && step "$k: LLM searches" "${b[@]}" --searches "$llm"
      step "$k: LFBOTreeSearch" "${b[@]}" --searches LFBOTreeSearch
      step "$k: re-timing the picks together" python3 examples/benchmark_openevolve_vs_baseline.py --kernels "$k" \
        --retime-from "$parts" --retime-rounds 30 --results "$out/benchmark/results.jsonl"
    done
    python3 examples/benchmark_openevolve_vs_baseline.py --report "$out/benchmark/results.jsonl" ;;
  *) echo "usage: $0 quick|full|split"; exit 2 ;;
esac
echo
if [ ${#failed[@]} -gt 0 ]; then printf '== FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "== OK"
