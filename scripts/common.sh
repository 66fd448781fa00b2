# Shared by train.sh / test.sh / scripts/run_folds.sh: find the config and experiment folder.
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
  local shot=1 args=("${@:3}") i
  for ((i = 0; i + 1 < ${#args[@]}; i += 2)); do
    [ "${args[i]}" = shot ] && shot=${args[i+1]}
  done
  EXP_DIR=exp/$DATASET/$EXP
  [ "$shot" != 1 ] && EXP_DIR=${EXP_DIR}_${shot}shot
  return 0
}
