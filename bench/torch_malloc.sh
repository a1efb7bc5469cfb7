# torch_malloc.sh: sourced by the benches that time PyTorch (bert_bench.sh, bert_train.sh). Sets TORCH_PRELOAD, the
# allocator PyTorch's runs get through LD_PRELOAD, and TORCH_MALLOC_NOTE, a line that says which.
#
# Why: PyTorch's CPU tensors come from glibc malloc, which maps every large buffer afresh and gives it back on free,
# so each step faults its activations in again. Where page faults are dear (seen on a 2-core AMD EPYC VM: 720,000
# faults and 12 s of system time in a 17 s training bench) that halves PyTorch's throughput; tcmalloc keeps the
# pages (the same bench: 2.7x fewer faults, PyTorch's training step 1.6-2.7x faster, inference at batch 32 1.8-2.3x).
# The C side allocates its arenas once and gains nothing from it. So PyTorch gets tcmalloc wherever Debian's
# libtcmalloc-minimal4 is installed (bench/install-deps.sh installs it): the stronger peer is the fair one.
# TORCH_MALLOC=glibc keeps glibc's malloc (the way before 2026-12-06).
TORCH_PRELOAD=
TORCH_MALLOC_NOTE="PyTorch allocator: glibc malloc"
if [ "${TORCH_MALLOC:-tcmalloc}" != glibc ]; then
    for f in /usr/lib/*/libtcmalloc_minimal.so.4; do
        if [ -f "$f" ]; then TORCH_PRELOAD=$f; break; fi
    done
    if [ -n "$TORCH_PRELOAD" ]; then
        TORCH_MALLOC_NOTE="PyTorch allocator: tcmalloc ($TORCH_PRELOAD; TORCH_MALLOC=glibc for glibc's malloc)"
    else
        TORCH_MALLOC_NOTE="PyTorch allocator: glibc malloc (libtcmalloc-minimal4 is not installed: PyTorch may be slower than it can be where page faults are dear)"
    fi
fi
