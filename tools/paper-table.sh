#!/bin/sh
# paper-table.sh — the QEIL v2 paper's evaluation table with qeil: GSM8K and
# ARC-Challenge under the standard / v1 / v2 configurations (`qeil eval
# --compare`: accuracy, pass@k, samples, energy, power, IPW, latency) and
# WikiText-103 perplexity (`qeil perplexity`), for every model found, into
# one markdown file. docs/eval.md "Reproducing the paper's table" gives the
# file layout; tests/paper_table_test.sh runs it on a synthetic stand-in.
#
#   sh tools/paper-table.sh MODELS_DIR DATA_DIR [OUT.md]
#
# MODELS_DIR  GGUF files: gpt2-125m.gguf granite-350m.gguf qwen2-0.5b.gguf
#             llama-3.2-1b.gguf lfm2-2.6b.gguf llama-3.1-8b.gguf
#             llama-3.1-8b-q4.gguf (the paper's families, in this order; a
#             missing one is listed under the table), then any other *.gguf
#             in name order
# DATA_DIR    gsm8k/test.jsonl (and gsm8k/train.jsonl for shots),
#             arc-challenge/test.jsonl (and arc-challenge/train.jsonl),
#             wikitext-103/wiki.test.raw; a missing benchmark is skipped
# OUT.md      the table (default paper-table.md); the raw JSON and the logs
#             of every run go to OUT.md.d/
#
# Settings (environment; the defaults are printed in the table's header):
#   QEIL=path        the qeil binary (default: build/qeil beside this script,
#                    else qeil on PATH)
#   SAMPLES=16       K, samples per problem       MAX_TOKENS=256  -n
#   GSM8K_SHOTS=4    ARC_SHOTS=4                  exemplars from train.jsonl
#   LIMIT=           first N problems of each benchmark (default: all)
#   CTX=512          perplexity window (llama.cpp's -c)
#   PLATFORM=qeil-laptop  SEED=42  THREADS=0  PPL_LIMIT_MB= (skip perplexity
#                    when wiki.test.raw is larger)
# Needs jq (tools/install-deps.sh --test installs it). Exit 0 when every run
# succeeded, 1 when one failed (the table still names it), 2 on bad usage.
set -u

usage() {
    sed -n '2,/^set -u$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
MODELS_DIR=$1
DATA_DIR=$2
OUT=${3:-paper-table.md}
[ -d "$MODELS_DIR" ] || { echo "paper-table: MODELS_DIR $MODELS_DIR is not a directory" >&2; exit 2; }
[ -d "$DATA_DIR" ] || { echo "paper-table: DATA_DIR $DATA_DIR is not a directory" >&2; exit 2; }
command -v jq > /dev/null 2>&1 || {
    echo "paper-table: needs jq (apt-get install jq; tools/install-deps.sh --test installs it)" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${QEIL:-}" ]; then
    if [ -x "$here/../build/qeil" ]; then QEIL="$here/../build/qeil"
    elif command -v qeil > /dev/null 2>&1; then QEIL=qeil
    else echo "paper-table: no qeil binary (build it with make, or set QEIL=)" >&2; exit 2
    fi
fi
SAMPLES=${SAMPLES:-16}
MAX_TOKENS=${MAX_TOKENS:-256}
GSM8K_SHOTS=${GSM8K_SHOTS:-4}
ARC_SHOTS=${ARC_SHOTS:-4}
LIMIT=${LIMIT:-}
CTX=${CTX:-512}
PLATFORM=${PLATFORM:-qeil-laptop}
SEED=${SEED:-42}
THREADS=${THREADS:-0}
for v in SAMPLES MAX_TOKENS GSM8K_SHOTS ARC_SHOTS CTX SEED THREADS; do
    eval "x=\$$v"
    case $x in ''|*[!0-9]*) echo "paper-table: $v=$x is not a non-negative integer" >&2; exit 2 ;; esac
done
case $LIMIT in *[!0-9]*) echo "paper-table: LIMIT=$LIMIT is not a non-negative integer" >&2; exit 2 ;; esac

RAW="$OUT.d"
mkdir -p "$RAW" || exit 2
ROWS="$RAW/rows.tsv"   # model bench problems config acc p1 pK samples energy power ipw latency
CMP="$RAW/compare.tsv" # model bench energy_red latency_red ipw_ratio
PPL="$RAW/ppl.tsv"     # model tokens windows ppl ppl_se
FAILS="$RAW/failures.txt"
: > "$ROWS"; : > "$CMP"; : > "$PPL"; : > "$FAILS"

FAMILIES="gpt2-125m granite-350m qwen2-0.5b llama-3.2-1b lfm2-2.6b llama-3.1-8b llama-3.1-8b-q4"
models=""
missing=""
for f in $FAMILIES; do
    if [ -f "$MODELS_DIR/$f.gguf" ]; then models="$models $f"; else missing="$missing $f"; fi
done
for p in "$MODELS_DIR"/*.gguf; do
    [ -f "$p" ] || continue
    b=$(basename "$p" .gguf)
    case " $FAMILIES " in *" $b "*) ;; *) models="$models $b" ;; esac
done
[ -n "$models" ] || { echo "paper-table: no *.gguf in $MODELS_DIR" >&2; exit 2; }

fail() { # what, log
    echo "$1 (log: $2)" >> "$FAILS"
    echo "paper-table: FAILED $1; see $2" >&2
}

# eval_one MODEL BENCH SHOTS: qeil eval --compare on DATA_DIR/BENCH/test.jsonl
eval_one() {
    m=$1; bench=$2; shots=$3
    test_f="$DATA_DIR/$bench/test.jsonl"; train_f="$DATA_DIR/$bench/train.jsonl"
    [ -f "$test_f" ] || return 0
    set -- eval -m "$MODELS_DIR/$m.gguf" --tasks "$test_f" --compare --samples "$SAMPLES" \
        -n "$MAX_TOKENS" --seed "$SEED" --platform "$PLATFORM" -t "$THREADS" --output json
    [ -n "$LIMIT" ] && set -- "$@" --limit "$LIMIT"
    if [ "$shots" -gt 0 ]; then
        if [ ! -f "$train_f" ]; then
            fail "$m $bench: ${shots}-shot needs $train_f" "-"
            return 0
        fi
        set -- "$@" --shots "$shots" --shots-file "$train_f"
    fi
    json="$RAW/$m.$bench.json"; log="$RAW/$m.$bench.log"
    echo "paper-table: $m $bench ..." >&2
    if ! "$QEIL" "$@" > "$json" 2> "$log"; then
        fail "$m $bench: qeil $*" "$log"
        return 0
    fi
    jq -r --arg m "$m" --arg b "$bench" --arg k "$SAMPLES" '
        def v: if . == null then "NA" else tostring end;
        .configurations[] |
        [$m, $b, (.summary.problems | v), .name, (.summary.accuracy_pct | v),
         ((.summary.pass_at_k // {})["1"] | v), ((.summary.pass_at_k // {})[$k] | v),
         (.summary.mean_samples | v), (.summary.energy_per_problem_J | v),
         (.summary.avg_power_W | v), (.summary.ipw | v), (.summary.latency_s | v)] | @tsv' \
        "$json" >> "$ROWS" &&
    jq -r --arg m "$m" --arg b "$bench" '
        def v: if . == null then "NA" else tostring end;
        [$m, $b, (.v2_vs_standard.energy_reduction_pct | v),
         (.v2_vs_standard.latency_reduction_pct | v), (.v2_vs_standard.ipw_ratio | v)] | @tsv' \
        "$json" >> "$CMP" || fail "$m $bench: unreadable JSON" "$json"
}

ppl_one() {
    m=$1; raw_f="$DATA_DIR/wikitext-103/wiki.test.raw"
    [ -f "$raw_f" ] || return 0
    if [ -n "${PPL_LIMIT_MB:-}" ] && [ "$(wc -c < "$raw_f")" -gt $((PPL_LIMIT_MB * 1048576)) ]; then
        echo "paper-table: $m wikitext-103 skipped (PPL_LIMIT_MB=$PPL_LIMIT_MB)" >&2
        return 0
    fi
    json="$RAW/$m.wikitext-103.json"; log="$RAW/$m.wikitext-103.log"
    echo "paper-table: $m wikitext-103 ..." >&2
    if ! "$QEIL" perplexity -m "$MODELS_DIR/$m.gguf" -f "$raw_f" -c "$CTX" -t "$THREADS" \
        --output json > "$json" 2> "$log"; then
        fail "$m wikitext-103: qeil perplexity -c $CTX" "$log"
        return 0
    fi
    jq -r --arg m "$m" '[$m, .tokens, .windows, .ppl, .ppl_se] | map(tostring) | @tsv' "$json" \
        >> "$PPL" || fail "$m wikitext-103: unreadable JSON" "$json"
}

for m in $models; do
    eval_one "$m" gsm8k "$GSM8K_SHOTS"
    eval_one "$m" arc-challenge "$ARC_SHOTS"
    ppl_one "$m"
done

version=$("$QEIL" --version 2>/dev/null | sed 's/^qeil //')
{
    echo "# QEIL v2 evaluation table (qeil $version)"
    echo
    echo "Written by \`tools/paper-table.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') from"
    echo "\`$MODELS_DIR\` and \`$DATA_DIR\`: K = $SAMPLES samples, -n $MAX_TOKENS,"
    echo "GSM8K ${GSM8K_SHOTS}-shot, ARC-Challenge ${ARC_SHOTS}-shot, seed $SEED,"
    echo "${LIMIT:+first $LIMIT problems of each benchmark, }perplexity windows of $CTX tokens."
    echo "Energy, power, IPW and latency are **modeled** for the platform"
    echo "\`$PLATFORM\` (the configuration's plan applied to the work actually executed);"
    echo "accuracy, pass@k and samples come from the model running on this machine."
    echo "pass@k needs every sample drawn: v2's cascade stops early (—)."
    echo "Raw JSON and logs: \`$RAW/\`."
    echo
    echo "## GSM8K and ARC-Challenge: standard / v1 / v2"
    echo
    echo "| model | benchmark | problems | config | accuracy % | pass@1 % | pass@$SAMPLES % | samples/problem | energy J/problem | avg power W | IPW %/W | latency s/problem |"
    echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '
        function pct(x) { return x == "NA" ? "—" : sprintf("%.1f", 100 * x) }
        function f1(x)  { return x == "NA" ? "—" : sprintf("%.1f", x) }
        function f2(x)  { return x == "NA" ? "—" : sprintf("%.2f", x) }
        function g4(x)  { return x == "NA" ? "—" : sprintf("%.4g", x) }
        { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                 $1, $2, $3, $4, f1($5), pct($6), pct($7), f2($8), g4($9), g4($10), g4($11), g4($12) }' "$ROWS"
    echo
    echo "## v2 against standard (modeled)"
    echo
    echo "| model | benchmark | energy | latency | IPW |"
    echo "|---|---|---:|---:|---:|"
    awk -F'\t' '
        function red(x) { if (x == "NA") return "n/a"; x = sprintf("%+.1f", -x)
                          return (x == "+0.0" || x == "-0.0" ? "0.0" : x) " %" }
        { printf "| %s | %s | %s | %s | %s |\n", $1, $2, red($3), red($4),
                 $5 == "NA" ? "n/a" : sprintf("x%.2f", $5) }' "$CMP"
    echo
    echo "## Means over the models and benchmarks above"
    echo
    echo "| config | runs | accuracy % | pass@$SAMPLES % | avg power W | IPW %/W | energy J/problem |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '
        { n[$4]++; acc[$4] += $5
          if ($7 != "NA") { pk[$4] += $7; npk[$4]++ }
          if ($10 != "NA") { pw[$4] += $10; npw[$4]++ }
          if ($11 != "NA") { ip[$4] += $11; nip[$4]++ }
          if ($9 != "NA") { en[$4] += $9; nen[$4]++ } }
        END {
          split("standard v1 v2", order, " ")
          for (i = 1; i <= 3; i++) { c = order[i]; if (!n[c]) continue
            printf "| %s | %d | %.1f | %s | %s | %s | %s |\n", c, n[c], acc[c] / n[c],
                   npk[c] ? sprintf("%.1f", 100 * pk[c] / npk[c]) : "—",
                   npw[c] ? sprintf("%.4g", pw[c] / npw[c]) : "—",
                   nip[c] ? sprintf("%.4g", ip[c] / nip[c]) : "—",
                   nen[c] ? sprintf("%.4g", en[c] / nen[c]) : "—" } }' "$ROWS"
    echo
    echo "## WikiText-103 perplexity (llama.cpp's windows: -c $CTX, second half scored)"
    echo
    echo "| model | tokens | windows | perplexity |"
    echo "|---|---:|---:|---:|"
    awk -F'\t' '{ f = $4 < 1e6 ? "%.4f ± %.4f" : "%.4g ± %.4g"
                  printf "| %s | %s | %s | " f " |\n", $1, $2, $3, $4, $5 }' "$PPL"
    if [ -n "$missing" ]; then
        echo
        printf 'Not in `%s`:' "$MODELS_DIR"
        for f in $missing; do printf ' `%s.gguf`' "$f"; done
        echo "."
    fi
    if [ -s "$FAILS" ]; then
        echo
        echo "**Failed runs:**"
        echo
        sed 's/^/- /' "$FAILS"
    fi
} > "$OUT"
echo "paper-table: wrote $OUT" >&2
[ -s "$FAILS" ] && exit 1
exit 0
