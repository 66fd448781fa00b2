# Shared by train.sh / test.sh / scripts/run_folds.sh: find the config (the Python side picks the
# run's folder, exp/DATASET/EXP[_Kshot] or `save_path`, and writes its logs there).
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}

resolve() {
  if [ $# -lt 2 ]; then
    echo "usage: $0 DATASET EXP [key value ...]   (e.g. pascal split0_resnet50)" >&2
    exit 2
  fi
  DATASET=$1
  EXP=$2
  if [ ! -d "config/$DATASET" ]; then
    echo "error: unknown dataset '$DATASET': use one of $(ls config | tr '\n' ' ')" >&2
    exit 2
  fi
  CONFIG=config/$DATASET/${DATASET}_${EXP}.yaml
  if [ ! -f "$CONFIG" ]; then
    echo "error: no config $CONFIG: experiments for $DATASET are: $(ls config/$DATASET | grep _split | sed "s/^${DATASET}_//; s/.yaml$//" | tr '\n' ' ')" >&2
    exit 2
  fi
  return 0
}

# launch SCRIPT.py ARGS...: plain python, or torchrun when GPUS > 1 or NNODES > 1.
#   GPUS=N       processes on this machine (torchrun --nproc_per_node N; one GPU each)
#   NNODES=M     machines; then NODE_RANK (0..M-1), MASTER_ADDR and MASTER_PORT (29500)
launch() {
  local gpus=${GPUS:-1} nnodes=${NNODES:-1}
  case "$gpus$nnodes" in
    *[!0-9]*) echo "error: GPUS='$gpus' and NNODES='$nnodes' must be positive integers" >&2; exit 2 ;;
  esac
  if [ "$gpus" -lt 1 ] || [ "$nnodes" -lt 1 ]; then
    echo "error: GPUS and NNODES must be >= 1 (got GPUS=$gpus NNODES=$nnodes)" >&2
    exit 2
  fi
  if [ "$gpus" -eq 1 ] && [ "$nnodes" -eq 1 ]; then
    $PY "$@"
  elif [ "$nnodes" -eq 1 ]; then
    $PY -m torch.distributed.run --standalone --nproc_per_node "$gpus" "$@"
  else
    : "${NODE_RANK:?set NODE_RANK (0..NNODES-1) on each machine}" "${MASTER_ADDR:?set MASTER_ADDR to the host of node 0}"
    $PY -m torch.distributed.run --nnodes "$nnodes" --node_rank "$NODE_RANK" --nproc_per_node "$gpus" \
      --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" "$@"
  fi
}
