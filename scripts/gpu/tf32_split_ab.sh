#!/usr/bin/env bash
# On the GPU machine (carry .dev/debs and .dev/shared/corpora): the tiled kernel's float32 operand
# split (fused_cuda_tiled.cu: split_tf32, integer adds on the bits) against the cvt.rna.tf32.f32
# split it replaced (results/gpu/tf32_split/cvt_split.patch, against 767d51a's kernel) in one run
# (scripts/gpu/kernel_ab.sh). scripts/gpu/tf32_split_report.py summarises. The patch applies to
# the kernel as it was in fused_cuda_tiled.cu up to 6cd587a (since f88241f it is in
# fused_cuda_tiled.cuh): re-run it from such a checkout.
#   run: bash scripts/gpu/tf32_split_ab.sh
exec bash "$(dirname "$0")/kernel_ab.sh" tf32_split results/gpu/tf32_split/cvt_split.patch integer cvt
