#!/usr/bin/env bash
# A few minutes of training per model on one GPU, the weights brought back as one archive:
# the prepared run of issue #24 for a session that is lent a GPU (docs/training.md,
# "Runs that span sittings"). Each run resumes where it stopped (its checkpoints/ snapshot
# or its run folder), trains for MINUTES (--time-limit: validate, save, export) and the
# run folders' small checkpoints, weights, learning curves and logs go into
# OUT/sprint.tar.gz (RUN/FILE paths). Unpack it into runs/ here (tar xzf sprint.tar.gz -C
# runs) and copy the snapshots into checkpoints/.
#
#   bash tools/gpu_sprint.sh MINUTES OUT DATA [RUN ...]
#
# DATA holds csun_train70, csun_train70_half, csun_test10_crop256 (tools/prepare_csun.py),
# Train400, Set12, Set5 and kernels (the paper's kernel_*.npy); sr_compact also trains on
# csun_pseudo_x4 (tools/pseudo_hr.py) when DATA has it. RUN: conv_unet_colour,
# conv_unet_gray, sr_compact, conv_unet_deblur (default: all four). DEVICE=cpu rehearses
# on the CPU; BATCH sets the batch size (default 64 on
# a GPU, the config's on the CPU); RUNS the folder of the run folders (default runs).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?MINUTES}
out=${2:?OUT}
data=${3:?DATA}
shift 3
runs=("$@")
known=(conv_unet_colour conv_unet_gray sr_compact conv_unet_deblur)
[ ${#runs[@]} -gt 0 ] || runs=("${known[@]}")
for run in "${runs[@]}"; do
  case " ${known[*]} " in
    *" $run "*) ;;
    *) echo "gpu_sprint: unknown run $run (${known[*]// /, })" >&2
       exit 2 ;;
  esac
done
for folder in csun_train70 csun_train70_half csun_test10_crop256 Train400 Set12 Set5 kernels; do
  [ -d "$data/$folder" ] || { echo "gpu_sprint: $data/$folder is missing" >&2; exit 2; }
done
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
device=${DEVICE:-auto}
runs_dir=${RUNS:-runs}
# a constant lr of 1e-4 that the EMA averages: the snapshots are past their configurations'
# milestones, whose decayed rate (lr × gamma^milestones passed) a resume would otherwise take
common=(--set "train.device=$device" --set train.progress_bar=false --time-limit "$minutes"
  --set optim.lr=1e-4 --set "optim.milestones=[]")
if [ "$device" != cpu ]; then
  common+=(--set "data.batch_size=${BATCH:-64}" --set data.num_workers=8 --set train.num_threads=0)
elif [ -n "${BATCH:-}" ]; then
  common+=(--set "data.batch_size=$BATCH")
fi
csun=(--set "data.train_dirs=[$data/csun_train70,$data/csun_train70_half]")

train() {  # train RUN CONFIG [ARGS...]: resume the run folder, else its snapshot, else start
  local run=$1 config=$2
  shift 2
  local resume=()
  if [ -n "$(ls "$runs_dir/$run"/checkpoint_*.pt 2>/dev/null)" ]; then
    resume=(--resume)
  elif [ -f "checkpoints/$run/last_small.pt" ]; then
    resume=(--resume "checkpoints/$run/last_small.pt")
    mkdir -p "$runs_dir/$run"
    cp "checkpoints/$run/metrics.csv" "$runs_dir/$run/" 2>/dev/null || true
  fi
  python -m conversenet.cli train "$config" --out "$runs_dir/$run" "${resume[@]}" "${common[@]}" "$@"
}

for run in "${runs[@]}"; do
  case $run in
    conv_unet_colour)
      # stage 2 (128² patches) goes on past its 4,500 steps
      train "$run" configs/unet_colour_denoiser_blind_stage2.yaml --set train.total_steps=40000 \
        "${csun[@]}" --set "validation.dir=$data/csun_test10_crop256" ;;
    conv_unet_gray)
      # stage 2 (128² patches) goes on past its 4,500 steps
      train "$run" configs/unet_denoiser_blind_stage2.yaml --set train.total_steps=40000 \
        --set "data.train_dirs=[$data/Train400]" --set "validation.dir=$data/Set12" ;;
    sr_compact)
      # the latest stage's configuration; without a snapshot: from the shipped weights (a
      # resumed run ignores init_weights); the teacher's folder when DATA has it
      sr_dirs="$data/csun_train70,$data/csun_train70_half"
      [ -d "$data/csun_pseudo_x4" ] && sr_dirs+=",$data/csun_pseudo_x4"
      train "$run" configs/compact_sr_x4_stage6.yaml --set "data.train_dirs=[$sr_dirs]" \
        --set "validation.dir=$data/Set5" --set model.init_weights=pretrained \
        --set train.total_steps=40000 ;;
    conv_unet_deblur)
      train "$run" configs/unet_deblur_blind.yaml "${csun[@]}" --set "validation.dir=$data/Set5" \
        --set "validation.kernel=$data/kernels/kernel_3.npy" ;;
  esac
done

mkdir -p "$out"
files=()
for run in "${runs[@]}"; do
  for name in last_small.pt last_small.pt.sha256 metrics.csv model.safetensors train.log; do
    if [ -f "$runs_dir/$run/$name" ]; then files+=("$run/$name"); fi
  done
done
tar czf "$out/sprint.tar.gz" -C "$runs_dir" "${files[@]}"
echo "gpu_sprint: ${#files[@]} files in $out/sprint.tar.gz"
