#!/bin/bash
# install-deps.sh: the bench-only Debian packages of `make bench` (not needed to build or test xmc):
#   python3-sklearn python3-numpy python3-scipy  the scikit-learn peer (bench/peer_sklearn.py); python3-torch the encoder peer
#   fasttext                                      the fastText peer (Debian's build of fastText 0.9.2)
#   libtcmalloc-minimal4                          PyTorch's allocator in the encoder benches (bench/torch_malloc.sh)
#   linux-perf                                    where the batched search's time goes (bench/batch.sh, batch_profile.sh)
# Installs what is missing when run as root with apt-get; otherwise says what is missing and carries on
# (bench/run.sh skips a peer whose tools are absent). Always exits 0.
need=()
/usr/bin/python3 -c 'import sklearn, numpy, scipy' 2>/dev/null || need+=(python3-sklearn python3-numpy python3-scipy)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
command -v fasttext >/dev/null 2>&1 || need+=(fasttext)
ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1 || need+=(libtcmalloc-minimal4)
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1; } ||
        echo "bench: could not install ${need[*]}; the peers that need them are skipped" >&2
else
    echo "bench: missing ${need[*]} (not root: install them with apt-get to run those peers)" >&2
fi
exit 0
