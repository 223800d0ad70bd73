#!/usr/bin/env bash
# rawflow batch as a Slurm job array on a real one-node cluster: munged, slurmctld and slurmd
# (Debian's slurm-wlm and munge) started here on a private configuration (SLURM_CONF, nothing in
# /etc changed), stopped by PID at the end. `sbatch --array=0-2` of examples/slurm/rawflow-batch.sbatch
# over a manifest of generated inputs, one of them a file that is not media: every input is covered
# exactly once, the bad one is in its shard's failed list, and re-submitting the array redoes only
# that input.
set -euo pipefail
: "${RAWFLOW_BIN:?}" "${RAWFLOW_SOURCE_DIR:?}" "${RAWFLOW_TEST_WORK:?}"
for tool in slurmctld slurmd sbatch munged; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "FAIL: $tool is missing: run scripts/setup.sh (slurm-wlm, munge)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (munged runs as user munge, slurmd as root)"; exit 1; }
work=$RAWFLOW_TEST_WORK/slurm
rm -rf "$work" && mkdir -p "$work"/{state,spool,log,archive,run}
src=$RAWFLOW_SOURCE_DIR
py=/usr/bin/python3
RAWFLOW_BIN=$RAWFLOW_BIN "$src/scripts/make_demo_media.sh" "$work" >/dev/null

# The archive: five short clips and one text file named .mp4, listed in a manifest.
for i in 1 2 3 4 5; do
  ffmpeg -nostdin -loglevel error -y -f lavfi -i "sine=frequency=$((200 * i)):sample_rate=16000:duration=3" \
    -c:a pcm_s16le "$work/archive/clip$i.wav"
done
echo "not a video" > "$work/archive/bad.mp4"
(cd "$work/archive" && ls clip*.wav bad.mp4) > "$work/archive/manifest.txt"
cat > "$work/batch.yaml" <<YAML
version: 1
tasks: [{name: speech, kind: transcribe, window_s: 3, max_new_tokens: 2}]
engine: {model: $work/tiny.gguf, mmproj: $work/tiny-mmproj.gguf, threads: 1}
outputs: {stdout: {enabled: false}}
YAML

# A private one-node cluster.
export SLURM_CONF=$work/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=rawflow-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=$((6900 + RANDOM % 500))
SlurmdPort=$((7500 + RANDOM % 500))
ReturnToService=2
# Schedule pending array tasks every second (default 60 s), so the test takes seconds, not minutes.
SchedulerParameters=sched_interval=1
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
munge_pid=""
stop_cluster() {
  for f in "$work/run/slurmd.pid" "$work/run/slurmctld.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  [ -n "$munge_pid" ] && kill "$munge_pid" 2>/dev/null || true
}
trap stop_cluster EXIT
# munged: its own socket and pid under the work directory (a system munged may run too).
install -d -o munge -g munge "$work/run/munge"
runuser -u munge -- /usr/sbin/munged --socket="$work/run/munge/munge.socket" \
  --pid-file="$work/run/munge/munged.pid" --log-file="$work/run/munge/munged.log" --seed-file="$work/run/munge/seed" -f
munge_pid=$(cat "$work/run/munge/munged.pid")
# Slurm's daemons and clients talk to this munged through its socket (AuthInfo).
echo "AuthInfo=socket=$work/run/munge/munge.socket" >> "$SLURM_CONF"
/usr/sbin/slurmctld -c -f "$SLURM_CONF"
/usr/sbin/slurmd -N localhost -f "$SLURM_CONF"
for _ in $(seq 1 100); do
  [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ] && break
  sleep 0.1
done
[ "$(sinfo -h -N -o %t)" = idle ] || { echo "FAIL: the node did not come up"; tail "$work/log/"*.log; exit 1; }
echo "cluster up: $(sinfo -h -o '%P %D %t')"

# Submits the array and waits for it by polling squeue (sbatch --wait backs off to long sleeps).
# One CPU per task here, so both CPUs of the node run tasks.
submit() {
  local job
  job=$(sbatch --parsable --array=0-2 --cpus-per-task=1 --chdir="$work" \
    --export=ALL,RAWFLOW_BIN="$RAWFLOW_BIN" \
    "$src/examples/slurm/rawflow-batch.sbatch" "$work/batch.yaml" "$work/archive/manifest.txt" \
    "$work/out" 3)
  for _ in $(seq 1 1200); do
    [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
    sleep 0.1
  done
  [ -z "$(squeue -h -j "$job")" ] || { echo "FAIL: job $job still queued or running"; exit 1; }
  echo "$job"
}
echo "== sbatch --array=0-2"
job=$(submit)
echo "job $job"
$py - "$work/out" <<'PY'
import csv, os, sys
out = sys.argv[1]
done = sorted(f.split("-")[0] for f in os.listdir(os.path.join(out, "items")) if f.endswith(".jsonl"))
failed = []
for i in range(3):
    p = os.path.join(out, "failed", f"{i}.tsv")
    assert os.path.exists(p), p  # every shard ran
    failed += [os.path.basename(r["input"]) for r in csv.DictReader(open(p), delimiter="\t")]
print("done:", done, "failed:", failed)
assert done == ["clip1_wav", "clip2_wav", "clip3_wav", "clip4_wav", "clip5_wav"], done
assert failed == ["bad.mp4"], failed
logs = os.listdir(os.path.join(out, "logs"))
assert len(logs) == 3, logs  # one log per task
PY
grep -h "rawflow batch: shard" "$work/out/logs/"*.log

echo "== the array again: only the failed input is redone"
job2=$(submit)
grep -h "rawflow batch: shard" "$work/out/logs/${job2}_"*.log | tee "$work/rerun.txt"
redo=$(sed -n 's/.*, \([0-9]*\) to do$/\1/p' "$work/rerun.txt" | awk '{ s += $1 } END { print s + 0 }')
[ "$redo" = 1 ] || { echo "FAIL: the re-submitted array redid $redo inputs, expected 1"; exit 1; }
scontrol show job "$job2" | grep -q "ExitCode=3:0" ||
  { echo "FAIL: the shard with the bad input should have exited 3"; scontrol show job "$job2"; exit 1; }
echo "PASS"
