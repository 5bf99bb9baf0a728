#!/bin/sh
# paper_table_test.sh — tools/paper-table.sh on its synthetic stand-in, so
# the script cannot rot: tiny random-weight models of the seven files the
# script looks for (`qeil mkmodel`; granite and lfm2 from their tiny presets
# when this build has them, else tiny-llama under their names) and the
# committed stand-in DATA_DIR tests/data/paper/ (copies of the samples in
# tests/data/eval and tests/data/wikitext: checked identical here).
#   table      exit 0; 7 models x 2 benchmarks x 3 configurations, the v2
#              comparison and the perplexity rows; cells equal to the raw
#              JSON (accuracy, energy, IPW, pass@k, perplexity); the shots
#              and settings in the header
#   missing    a family's file absent: listed under the table, exit 0
#   failures   a benchmark without its train split for --shots, and a
#              model that does not open: exit 1, the table names them
#   usage      bad arguments and settings: exit 2
# Run by tests/run.sh from the repository root with QEIL_BIN=DIR/qeil.
set -u
QEIL_BIN=${QEIL_BIN:-build/qeil}
case $QEIL_BIN in /*) ;; *) QEIL_BIN="$(pwd)/$QEIL_BIN" ;; esac
runner=${QEIL_TEST_RUNNER:-}
if [ ! -x "$QEIL_BIN" ]; then
    echo "# paper_table_test: no $QEIL_BIN, nothing to check"
    exit 0
fi
if ! command -v jq > /dev/null 2>&1; then
    echo "SKIP paper-table: needs jq (tools/install-deps.sh --test installs it)"
    exit 0
fi
if [ -n "$runner" ]; then
    echo "SKIP paper-table: not under an emulator ($runner)"
    exit 0
fi
tmp=$(mktemp -d /tmp/qeil-paper-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL $1"; failed=1; }
DATA=tests/data/paper

# the stand-in's files are the samples themselves
ok=1
for pair in gsm8k/test.jsonl:eval/gsm8k-test.jsonl gsm8k/train.jsonl:eval/gsm8k-train.jsonl \
    arc-challenge/test.jsonl:eval/arc-ai2.jsonl arc-challenge/train.jsonl:eval/arc-train.jsonl \
    wikitext-103/wiki.test.raw:wikitext/wiki.test.raw; do
    cmp -s "$DATA/${pair%%:*}" "tests/data/${pair#*:}" || { fail "stand-in: $DATA/${pair%%:*} differs from tests/data/${pair#*:}"; ok=0; }
done
[ $ok -eq 1 ] && echo "PASS stand-in: tests/data/paper holds the committed samples"

# ---- models: the seven files, tiny ----
M="$tmp/models"
mkdir -p "$M"
mk() { # name preset type [fallback preset]
    "$QEIL_BIN" mkmodel --preset "$2" --ctx 1024 --type "$3" -o "$M/$1.gguf" > /dev/null 2>&1 ||
        { [ -n "${4:-}" ] && "$QEIL_BIN" mkmodel --preset "$4" --ctx 1024 --type "$3" -o "$M/$1.gguf" > /dev/null 2>&1; } ||
        fail "mkmodel $1 ($2)"
}
mk gpt2-125m tiny-gpt2 f16
mk granite-350m tiny-granite f16 tiny-llama
mk qwen2-0.5b tiny-qwen2 f16
mk llama-3.2-1b tiny-llama f16
mk lfm2-2.6b tiny-lfm2 f16 tiny-llama
mk llama-3.1-8b tiny-llama f16
mk llama-3.1-8b-q4 tiny-llama q4_0

# check_cells TABLE MODEL BENCH PROBLEMS: accuracy, pass@1, pass@4, energy
# and IPW of the three configurations equal the raw JSON's, formatted
check_cells() {
    J="$1.d/$2.$3.json"
    for c in 0 1 2; do
        want=$(jq -r ".configurations[$c] | [.name, .summary.accuracy_pct,
            (.summary.pass_at_k // {} | .[\"1\"] // \"NA\"),
            (.summary.pass_at_k // {} | .[\"4\"] // \"NA\"), .summary.energy_per_problem_J,
            .summary.ipw] | @tsv" "$J" |
            awk -F'\t' 'function p(x) { return x == "NA" ? "—" : sprintf("%.1f", 100 * x) }
                        { printf "%s %.1f %s %s %.4g %.4g\n", $1, $2, p($3), p($4), $5, $6 }')
        name=${want%% *}
        cells=$(grep "^| $2 | $3 | $4 | $name |" "$1" | awk -F' [|] ' '{ print $4, $5, $6, $7, $9, $11 }')
        [ -n "$name" ] && [ "$cells" = "$want" ] ||
            fail "table: $2 $3 configuration $c: cells '$cells', JSON says '$want'"
    done
}

run_table() { # out [settings...]
    out=$1; shift
    env QEIL="$QEIL_BIN" SAMPLES=4 MAX_TOKENS=8 GSM8K_SHOTS=2 ARC_SHOTS=1 CTX=64 THREADS=1 "$@" \
        sh tools/paper-table.sh "$M" "$DATA" "$out" > "$tmp/stdout" 2> "$tmp/stderr"
}

# ---- the table ----
T="$tmp/table.md"
run_table "$T"
rc=$?
if [ $rc -ne 0 ]; then
    fail "table: exit $rc; stderr: $(tail -5 "$tmp/stderr")"
else
    rows=$(grep -c '^| [a-z0-9.-]* | \(gsm8k\|arc-challenge\) | [0-9]* | \(standard\|v1\|v2\) |' "$T")
    cmp_rows=$(grep -c '^| [a-z0-9.-]* | \(gsm8k\|arc-challenge\) | [-+n]' "$T")
    ppl_rows=$(grep -c '^| [a-z0-9.-]* | [0-9]* | [0-9]* | [0-9.e+]* ± [0-9.e+]* |$' "$T")
    [ "$rows" -eq 42 ] || fail "table: $rows rows of configurations, want 7 x 2 x 3 = 42"
    [ "$cmp_rows" -eq 14 ] || fail "table: $cmp_rows v2-vs-standard rows, want 14"
    [ "$ppl_rows" -eq 7 ] || fail "table: $ppl_rows perplexity rows, want 7"
    grep -q '^| gpt2-125m | gsm8k | 5 | standard |' "$T" || fail "table: no gpt2-125m gsm8k row of 5 problems"
    grep -q '^| qwen2-0.5b | arc-challenge | 4 | v2 |' "$T" || fail "table: no qwen2-0.5b arc-challenge v2 row"
    grep -q 'GSM8K 2-shot, ARC-Challenge 1-shot' "$T" || fail "table: the header does not state the shots"
    grep -q '^| standard | 14 |' "$T" || fail "table: no mean row over the 14 standard runs"
    grep -q 'Not in' "$T" && fail "table: lists a missing model, all seven are there"
    # cells are the raw JSON's ("—" where pass@k is null)
    check_cells "$T" llama-3.2-1b gsm8k 5
    # the perplexity row is the JSON's
    pj="$T.d/gpt2-125m.wikitext-103.json"
    want_ppl=$(jq -r '"| gpt2-125m | \(.tokens) | \(.windows) | " + (.ppl * 10000 | round / 10000 | tostring)' "$pj")
    got_ppl=$(grep '^| gpt2-125m | [0-9]* | [0-9]* |' "$T" | sed 's/ ± .*//')
    awk -v a="$want_ppl" -v b="$got_ppl" 'BEGIN { split(a, x, " [|] "); split(b, y, " [|] ");
        exit !(x[2] == y[2] && x[3] == y[3] && (x[4] - y[4]) ^ 2 < 1e-8) }' ||
        fail "table: perplexity row '$got_ppl', JSON says '$want_ppl'"
    # every eval recorded the shots it was asked for
    jq -e '.shots == 2 and (.configurations[0].problems | all(.shot_lines | length == 2))' \
        "$T.d/gpt2-125m.gsm8k.json" > /dev/null || fail "table: gsm8k run without its 2 shots"
    [ $failed -eq 0 ] && echo "PASS table: 42 configuration rows, 14 comparisons, 7 perplexities; cells equal the raw JSON"
fi

# ---- the demo model on its own held-out tasks written as GSM8K and ARC
# files (ARC: every other question labelled 1-4): real answers, so the
# accuracy and pass@k cells are not all zero ----
f0=$failed
if [ -f models/qeil-demo.gguf ]; then
    mkdir -p "$tmp/dd/gsm8k" "$tmp/dd/arc-challenge" "$tmp/md"
    cp models/qeil-demo.gguf "$tmp/md/"
    head -n 12 data/tasks/arith.jsonl | jq -c '{question, answer: "#### \(.answer)"}' \
        > "$tmp/dd/gsm8k/test.jsonl"
    head -n 12 data/tasks/choice.jsonl | jq -s -c 'to_entries[] | (.key % 2 == 1) as $d | .value |
        {id, question: (.question | sub(" A\\) .*$"; "")),
         choices: {text: [.question | scan("[A-H]\\) ([^ ]+)") | .[0]],
                   label: [.question | scan("([A-H])\\) ") | .[0] |
                           if $d then (explode[0] - 64 | tostring) else . end]},
         answerKey: (if $d then (.answer | explode[0] - 64 | tostring) else .answer end)}' \
        > "$tmp/dd/arc-challenge/test.jsonl"
    env QEIL="$QEIL_BIN" SAMPLES=4 MAX_TOKENS=128 GSM8K_SHOTS=0 ARC_SHOTS=0 THREADS=1 \
        sh tools/paper-table.sh "$tmp/md" "$tmp/dd" "$tmp/t6.md" > /dev/null 2> "$tmp/stderr"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "demo: exit $rc ($(tail -3 "$tmp/stderr"))"
    else
        check_cells "$tmp/t6.md" qeil-demo gsm8k 12
        check_cells "$tmp/t6.md" qeil-demo arc-challenge 12
        for b in gsm8k arc-challenge; do
            jq -e '.configurations[0].summary.accuracy_pct >= 40' "$tmp/t6.md.d/qeil-demo.$b.json" \
                > /dev/null || fail "demo: $b accuracy below 40 % (docs/demo-model.md: ~87 % / ~69 %)"
        done
        jq -e '[.configurations[0].problems[] | select(.gold == "B")] | length > 0' \
            "$tmp/t6.md.d/qeil-demo.arc-challenge.json" > /dev/null || fail "demo: no ARC gold B"
        [ $failed -eq $f0 ] && echo "PASS demo: the demo model on GSM8K- and ARC-form files (labels 1-4 too): cells equal the JSON, accuracy $(jq -r '.configurations[0].summary.accuracy_pct | . * 10 | round / 10' "$tmp/t6.md.d/qeil-demo.gsm8k.json") % / $(jq -r '.configurations[0].summary.accuracy_pct | . * 10 | round / 10' "$tmp/t6.md.d/qeil-demo.arc-challenge.json") % (standard)"
    fi
else
    echo "SKIP demo: no models/qeil-demo.gguf"
fi

# ---- a family missing ----
f0=$failed
mkdir -p "$tmp/m2"
cp "$M/gpt2-125m.gguf" "$M/qwen2-0.5b.gguf" "$tmp/m2/"
cp "$M/llama-3.2-1b.gguf" "$tmp/m2/extra-model.gguf"
env QEIL="$QEIL_BIN" SAMPLES=2 MAX_TOKENS=4 GSM8K_SHOTS=0 ARC_SHOTS=0 CTX=64 THREADS=1 LIMIT=2 \
    sh tools/paper-table.sh "$tmp/m2" "$DATA" "$tmp/t2.md" > /dev/null 2> "$tmp/stderr"
rc=$?
[ $rc -eq 0 ] || fail "missing: exit $rc, want 0 ($(tail -3 "$tmp/stderr"))"
grep -q 'Not in `.*`: `granite-350m.gguf` `llama-3.2-1b.gguf` `lfm2-2.6b.gguf` `llama-3.1-8b.gguf` `llama-3.1-8b-q4.gguf`\.' "$tmp/t2.md" ||
    fail "missing: the table does not list the five absent families"
# the families first in the paper's order, then the other files
order=$(grep '^| [a-z0-9.-]* | gsm8k | 2 | standard |' "$tmp/t2.md" | awk -F' [|] ' '{ sub(/^[|] /, "", $1); printf "%s ", $1 }')
[ "$order" = "gpt2-125m qwen2-0.5b extra-model " ] || fail "missing: model order '$order'"
[ $failed -eq $f0 ] && echo "PASS missing: absent families listed under the table, other models after the families"

# ---- failures ----
f0=$failed
mkdir -p "$tmp/d3/gsm8k" "$tmp/m3"
cp "$DATA/gsm8k/test.jsonl" "$tmp/d3/gsm8k/"   # no train.jsonl
cp "$M/gpt2-125m.gguf" "$tmp/m3/"
printf 'not a gguf' > "$tmp/m3/qwen2-0.5b.gguf"
env QEIL="$QEIL_BIN" SAMPLES=2 MAX_TOKENS=4 GSM8K_SHOTS=1 THREADS=1 \
    sh tools/paper-table.sh "$tmp/m3" "$tmp/d3" "$tmp/t3.md" > /dev/null 2> "$tmp/stderr"
rc=$?
[ $rc -eq 1 ] || fail "failures: exit $rc, want 1"
grep -q '^- gpt2-125m gsm8k: 1-shot needs .*/gsm8k/train.jsonl' "$tmp/t3.md" ||
    fail "failures: the missing train split is not named"
env QEIL="$QEIL_BIN" SAMPLES=2 MAX_TOKENS=4 GSM8K_SHOTS=0 THREADS=1 \
    sh tools/paper-table.sh "$tmp/m3" "$tmp/d3" "$tmp/t4.md" > /dev/null 2> "$tmp/stderr"
rc=$?
[ $rc -eq 1 ] || fail "failures: a model that does not open: exit $rc, want 1"
grep -q '^- qwen2-0.5b gsm8k: qeil eval .*(log: .*qwen2-0.5b.gsm8k.log)' "$tmp/t4.md" ||
    fail "failures: the model that does not open is not named with its log"
grep -q '^| gpt2-125m | gsm8k | 5 | v2 |' "$tmp/t4.md" || fail "failures: the good model's rows are gone"
[ $failed -eq $f0 ] && echo "PASS failures: exit 1, each failed run named in the table with its log"

# ---- usage ----
f0=$failed
sh tools/paper-table.sh > /dev/null 2>&1; [ $? -eq 2 ] || fail "usage: no arguments: want exit 2"
sh tools/paper-table.sh "$tmp/none" "$DATA" "$tmp/t5.md" > /dev/null 2>&1; [ $? -eq 2 ] || fail "usage: MODELS_DIR missing: want exit 2"
env QEIL="$QEIL_BIN" SAMPLES=x sh tools/paper-table.sh "$M" "$DATA" "$tmp/t5.md" > /dev/null 2> "$tmp/stderr"
[ $? -eq 2 ] && grep -q 'SAMPLES=x' "$tmp/stderr" || fail "usage: SAMPLES=x: want exit 2 naming it"
[ $failed -eq $f0 ] && echo "PASS usage: bad arguments and settings exit 2"
exit $failed
