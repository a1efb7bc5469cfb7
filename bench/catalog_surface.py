#!/usr/bin/python3
"""catalog_surface.py: a product-title surface for an `xmc gen` catalog, to test featurizers on cased, punctuated text.

usage: catalog_surface.py FILE.tsv...   writes FILE.tsv.surf beside each (labels unchanged; one seed for all files,
so a train and a test file given together share their brands). Per title: 70 % get a brand in front, 70 % of those
from the 20 brands of the first label's top-level category (brands such as `Zentek-Vo`, `O'Marlux`, `KAZE`),
the rest from any category; 50 % are Title Cased, 10 % UPPER CASED; 60 % get a suffix such as `(2-Pack)`,
`, Black`, `- Men's` or `| Free Shipping`. Used in docs/featurizer.md.
"""
import random, sys
rng = random.Random(7)
syl = ["ka", "zen", "tek", "vo", "lux", "mar", "qu", "dri", "ona", "vex", "pro", "sol", "tri", "nor", "ax", "el"]
def brand():
    w = "".join(rng.choice(syl) for _ in range(rng.randint(2, 3))).capitalize()
    r = rng.random()
    if r < 0.25: return w + "-" + rng.choice(syl).capitalize()
    if r < 0.4: return "O'" + w
    if r < 0.55: return w.upper()[:4]
    return w
brands = {}
suffix = ["(2-Pack)", "(3-Pack)", ", Black", ", White", "- 3.5mm", "| Free Shipping", "- 2024 Model", "(Set of 4)",
          "- Men's", "- Women's", "Kids'", "w/ Case", "16oz.", "10\"", "- XL"]
for path in sys.argv[1:]:
    out = open(path + ".surf", "w")
    for line in open(path):
        lab, _, text = line.rstrip("\n").partition("\t")
        top = lab.split(",")[0].split(" > ")[0]
        if top not in brands: brands[top] = [brand() for _ in range(20)]
        words = text.split()
        r = rng.random()
        if r < 0.5: words = [w.capitalize() for w in words]
        elif r < 0.6: words = [w.upper() for w in words]
        if rng.random() < 0.7:
            b = rng.choice(brands[top]) if rng.random() < 0.7 else rng.choice(rng.choice(list(brands.values())))
            words.insert(0, b)
        if rng.random() < 0.6: words.append(rng.choice(suffix))
        out.write(lab + "\t" + " ".join(words) + "\n")
