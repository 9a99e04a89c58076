# Source on the GPU machine before running build-gpu binaries: the unpacked Debian libraries.
_csa_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export LD_LIBRARY_PATH=$_csa_root/.dev/sysroot/usr/lib/x86_64-linux-gnu:$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# One csa-bench run as a line of FILE (JSON lines): its JSON with `label`, `command` and any
# CSA_TILED_* variables of the environment, or {label, args, error} when it fails or runs past
# SECONDS. The benchmark scripts' one way of recording a point.
#   csa_bench_point FILE SECONDS LABEL ARGS...
csa_bench_point() {
  local out=$1 secs=$2 label=$3 j err
  shift 3
  err=$(mktemp)
  if j=$(timeout "$secs" "${CSA_BENCH:-$_csa_root/build-gpu/apps/csa-bench}" "$@" 2> "$err"); then
    python3 -c "import json,os,sys; d=json.loads(sys.argv[1]); d['label']=sys.argv[2]; d['command']='csa-bench '+sys.argv[3]; d.update({k: v for k, v in os.environ.items() if k.startswith('CSA_TILED')}); print(json.dumps(d))" "$j" "$label" "$*" >> "$out"
  else
    python3 -c "import json,sys; print(json.dumps({'label':sys.argv[1],'args':sys.argv[2],'error':open(sys.argv[3]).read()[-400:]}))" "$label" "$*" "$err" >> "$out"
  fi
  rm -f "$err"
}

# A copy of the Hugging Face directory SRC at DST whose config.json allows N positions
# (max_position_embeddings): a RoPE model run past its trained length, to measure speed at that
# ctx (not quality). run_pipeline_speed.sh's and calibrate_ab.sh's MAX_POSITIONS.
#   csa_model_with_positions SRC DST N
csa_model_with_positions() {
  rm -rf "$2" && cp -r "$1" "$2" || return 1
  python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['max_position_embeddings']=int(sys.argv[2]); json.dump(c, open(p, 'w'), indent=1)" "$2/config.json" "$3"
}

# Runs cmd with its output in DIR/NAME.log and its wall seconds in DIR/NAME.wall, and prints
# "NAME rc=RC SECONDS s": the whole-process timing of run_pipeline_speed.sh and calibrate_ab.sh.
#   csa_wall DIR NAME cmd...
csa_wall() {
  local dir=$1 name=$2 t0 rc
  shift 2
  t0=$(date +%s.%N)
  "$@" > "$dir/$name.log" 2>&1
  rc=$?
  python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)" \
    > "$dir/$name.wall"
  echo "$name rc=$rc $(cat "$dir/$name.wall") s"
}
