#!/bin/bash
# bench/batch_profile.sh MODEL FILE.tsv [B [N [R]]]: where one thread's prediction time goes at batch B (default
# 256; 1 for the single search), text in: perf records build/bench/batch_bench's passes of that size alone (N
# texts, default 3000, R passes, default 10) and its functions are summed into what they do. Shares are of the
# samples (perf's cpu-clock); the µs split multiplies them by the best pass's CPU µs/doc (printed by
# batch_bench). Needs perf (Debian: linux-perf). BUILD: the build directory (default build).
#   weight scoring: score_chunk*, feat_list_*, score_group, layer_round (a layer's round of the batched search,
#                   into which the group scoring is inlined; it also holds the grouping of pairs by node),
#                   xmci_beam_search_rows, xmci_beam_search
#   selection:      select_children (post-processor, pruning, top lists), push_top, expf, post_transform
#   featurization:  the tokenizer, n-grams, the vocabulary's hash lookups (XXH64), tf-idf weighting and sorting
set -u -o pipefail
BUILD=${BUILD:-build}
[ $# -ge 2 ] || { echo "usage: bench/batch_profile.sh MODEL FILE.tsv [B [N [R]]]" >&2; exit 2; }
B=${3:-256} N=${4:-3000} R=${5:-10}
command -v perf >/dev/null || { echo "batch_profile.sh: perf not installed" >&2; exit 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/xmc-prof.XXXXXX") || exit 1
trap 'rm -rf "$OUT"' EXIT
export OPENBLAS_NUM_THREADS=1
line=$(perf record -q -o "$OUT/perf.data" "$BUILD/bench/batch_bench" "$1" "$2" "$N" "$B" "$R" "$B") || exit 1
us=$(tr ' ' '\n' <<<"$line" | sed -n "/^batch${B}_us_per_doc\$/{n;p}")
echo "$line"
perf report -i "$OUT/perf.data" --no-children --stdio --sort sym 2>/dev/null | awk -v us="$us" '
    /^ +[0-9.]+%/ {
        p = $1; sub("%", "", p); s = $NF
        if (s ~ /score_chunk|feat_list|score_group|layer_round|beam_search/) k = "weight scoring"
        else if (s ~ /select|push_top|expf|post_transform/) k = "selection"
        else if (s ~ /tok|tfidf|transform_ws|flush_seg|end_word|add_cp|sort_ids|l2_normalize|ngram|XXH|logf|vocab|utf8proc/) k = "featurization"
        else k = "other"
        share[k] += p
    }
    END {
        n = split("weight scoring,selection,featurization,other", order, ",")
        for (i = 1; i <= n; i++) printf "  %-15s %5.1f %%  %6.2f us/doc\n", order[i], share[order[i]], share[order[i]] * us / 100
    }'
