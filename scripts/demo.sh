#!/usr/bin/env bash
# make demo: installs what is missing, builds, generates the demo catalog, trains a model, and shows it at work:
# held-out records with their predicted and true categories, the evaluation, and (when xmcd is built) the
# streaming stage on an embedded Kafka, then the continuous retrainer teaching it a category the first model never
# saw (scripts/demo-retrain.sh). Everything it writes goes to demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing Debian packages (if missing) and building"
if ! bash .ci/install-deps; then echo "could not install packages: run as root or install them by hand (see .ci/install-deps)"; exit 1; fi
make -j2 >/dev/null
XMC=build/xmc
OUT=demo-out
rm -rf "$OUT"; mkdir -p "$OUT"

say "generating a product catalog from the Shopify taxonomy (8,516 leaf categories, seed 7)"
$XMC gen --taxonomy data/demo/categories.tsv --docs 44000 --seed 7 --out "$OUT/catalog.tsv"
# one category is kept from the first model (the retraining act at the end teaches it): the catalog's 10th most
# frequent, so that there are a few hundred products of it to learn from
NEW=$(cut -f1 "$OUT/catalog.tsv" | tr ',' '\n' | sort | uniq -c | sort -k1,1nr -k2 | awk 'NR == 10 { $1 = ""; print substr($0, 2) }')
has_new() { awk -F'\t' -v c="$NEW" -v want="$1" '{ n = split($1, l, ","); h = 0; for (i = 1; i <= n; i++) h = h || l[i] == c }
                                                  h == want'; }
printf '%s\n' "$NEW" > "$OUT/new_category.txt"
head -n 40000 "$OUT/catalog.tsv" | has_new 0 > "$OUT/train.tsv"
tail -n 4000 "$OUT/catalog.tsv" | has_new 0 > "$OUT/test.tsv"
has_new 1 < "$OUT/catalog.tsv" > "$OUT/new_category.tsv"
echo "$(wc -l < "$OUT/train.tsv") training records, $(wc -l < "$OUT/test.tsv") held out; the $(wc -l < "$OUT/new_category.tsv")" \
     "products of \"$NEW\" are kept aside for the last act; e.g.:"
head -n 3 "$OUT/train.tsv" | sed 's/^/  /'

say "training (xmc train's defaults: TF-IDF word unigrams, label tree, XR-Linear; threshold 0.01)"
VERSION=$($XMC train --train "$OUT/train.tsv" --model "$OUT/models" --threshold 0.01)
$XMC inspect --model "$OUT/models" | sed -n '1,2p;7,16p'

say "held-out records: title -> top 3 predicted categories (true categories below)"
head -n 8 "$OUT/test.tsv" > "$OUT/sample.tsv"
$XMC predict --model "$OUT/models" --test "$OUT/sample.tsv" -k 3 > "$OUT/sample.pred"
paste "$OUT/sample.tsv" "$OUT/sample.pred" | while IFS=$'\t' read -r truth title p1 p2 p3; do
  printf '  %s\n' "$title"
  for p in "$p1" "$p2" "$p3"; do [ -n "$p" ] && printf '     %.4f  %s\n' "${p##*:}" "${p%:*}"; done
  printf '     true:    %s\n' "$truth"
done

say "evaluation on the 4,000 held-out records"
$XMC eval --model "$OUT/models" --test "$OUT/test.tsv" 2>/dev/null | grep -E '^(P@|nDCG@5|PSP@5|docs/s)' | sed 's/^/  /'

if [ -x build/xmcd ] && [ -f scripts/demo-stream.sh ]; then
  bash scripts/demo-stream.sh "$OUT" "$VERSION"
  bash scripts/demo-retrain.sh "$OUT"
fi
say "done: models in $OUT/models (serving: $(cat "$OUT/models/CURRENT"))"
